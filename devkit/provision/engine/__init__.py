"""The engine: a provisioning run, and operating what it provisioned."""

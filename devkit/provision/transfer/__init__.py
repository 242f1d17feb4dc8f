"""What this machine makes or packs and sends to a host: a branch, wheels, image roots."""

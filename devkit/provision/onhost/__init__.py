"""Code that runs ON THE HOST: standard library only, no devkit imports (shipped as source)."""

"""Configuration: the settings object read from the environment, logging, gunicorn's and Flower's settings."""

"""The one exception type a user can cause; the CLI turns it into one line and a non-zero exit."""


class MusicGPTError(Exception):
    """A problem with the user's input or environment, with a message saying what to do next."""

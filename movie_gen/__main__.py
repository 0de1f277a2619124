"""`python -m movie_gen`: the same as the `movie-gen` command."""

import sys

from .cli import main

sys.exit(main())

"""Suite-wide settings. Hypothesis draws the same examples on every run and every machine (derandomized, no example
database), so a green run cannot turn red by chance; a failing example found once is added as an explicit case."""
import os

from hypothesis import settings

settings.register_profile("suite", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("explore", derandomize=False, database=None, deadline=None, print_blob=True)
# HYPOTHESIS_PROFILE=explore draws new examples (to look for bugs); the suite itself is deterministic.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))

"""The core layer: what every part of the system uses (configuration, database, logs, masking, metrics,
text normalisation, the working-day calendar, phone numbers, process helpers).  It imports nothing else
from the project."""

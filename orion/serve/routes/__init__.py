"""The API's route modules, one per resource; each handler only converts and delegates."""

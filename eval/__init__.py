"""Evaluation of the service-guide knowledge base (``python -m eval.run_eval``)."""

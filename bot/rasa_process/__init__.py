"""Code that runs inside Rasa's own process (Python 3.10, Rasa's virtualenv).  It imports nothing else from
the project, so Rasa's old dependencies never meet the gateway's."""

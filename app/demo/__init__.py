"""`python -m app demo`: the product without Telegram (see run.py). Kept light: `python -m app`
imports the verb's parser (cli.py) for every command."""

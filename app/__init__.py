from app import aiogram_types

aiogram_types.install()  # before anything imports aiogram: see app/aiogram_types.py

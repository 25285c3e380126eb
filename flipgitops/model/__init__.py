"""Data only: frozen pydantic models shared by every layer."""

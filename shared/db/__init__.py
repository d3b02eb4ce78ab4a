"""Database: SQLModel tables, engine and sessions, and the repository every stage writes through."""

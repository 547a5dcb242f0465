"""What is on disk: session files (SQLite), CSV input, the session history."""

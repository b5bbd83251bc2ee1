"""Side effects: run after the response is built, never change it."""

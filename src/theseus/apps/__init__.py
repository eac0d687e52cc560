"""Built-in apps. Each module here is a plugin, discovered exactly like a user's."""

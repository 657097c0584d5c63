"""Mail as the rest of Postdesk knows it: the parsed message and its parts, the transport's envelope,
and the parser that turns raw bytes into a `ParsedMessage` (ground floor: every floor above may use it)."""

"""aiogram routers, split by who is talking: merchants in private chats, and errors."""

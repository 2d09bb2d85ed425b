"""The built-in plugins. A new plugin is one module here plus one line in BUILTIN_HANDLERS."""

from app.plugins.contract import PluginHandler
from app.plugins.handlers.analytics import AnalyticsHandler
from app.plugins.handlers.forward import ForwardHandler
from app.plugins.handlers.welcome import WelcomeHandler

BUILTIN_HANDLERS: tuple[type[PluginHandler], ...] = (
    AnalyticsHandler,
    ForwardHandler,
    WelcomeHandler,
)

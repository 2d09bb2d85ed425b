"""The plugin API: catalog, installs, config and enablement, for one service context at a time."""

from __future__ import annotations

from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.accounts.context import ServiceContext
from app.accounts.models import User
from app.audit import service as audit
from app.errors import AlreadyInstalled, NotFound, NotInstalled, PlanLimitReached, PluginFailed, Unauthenticated
from app.plugins.config import validate_config
from app.plugins.contract import ConfigUpdateRequest, InstallRequest
from app.plugins.executor import Executor
from app.plugins.models import Plugin, UserPlugin
from app.settings import Settings


class PluginService:
    def __init__(self, settings: Settings, executor: Executor) -> None:
        self.settings = settings
        self.executor = executor

    # --- catalog -----------------------------------------------------------------------

    async def available(self, category: str | None = None) -> list[Plugin]:
        query = Plugin.filter(is_active=True)
        if category is not None:
            query = query.filter(category=category)
        return await query.order_by("name", "slug")

    async def by_slug(self, slug: str) -> Plugin | None:
        return await Plugin.get_or_none(slug=slug)

    async def installed_plugin_ids(self, ctx: ServiceContext | None) -> set[str]:
        if ctx is None:
            return set()
        return set(await UserPlugin.filter(user_id=ctx.user_id).values_list("plugin_id", flat=True))

    # --- installs ----------------------------------------------------------------------

    async def my_installs(self, ctx: ServiceContext) -> list[UserPlugin]:
        return await UserPlugin.filter(user_id=ctx.user_id).select_related("plugin").order_by("created_at", "id")

    async def install(self, ctx: ServiceContext, request: InstallRequest) -> UserPlugin:
        plugin = await Plugin.get_or_none(id=request.plugin_id, is_active=True)
        if plugin is None:
            raise NotFound("No such plugin")
        config = validate_config(plugin.config_schema, request.config)
        limit = self.settings.plan_limit(ctx.plan.value)
        try:
            async with in_transaction():
                # Lock the user row: concurrent installs of one user queue here, so the count holds.
                user = await User.filter(id=ctx.user_id).select_for_update().first()
                if user is None:
                    raise Unauthenticated("Unknown user")
                if await UserPlugin.exists(user_id=ctx.user_id, plugin_id=plugin.id):
                    raise AlreadyInstalled("The plugin is installed already")
                if limit is not None and await UserPlugin.filter(user_id=ctx.user_id).count() >= limit:
                    raise PlanLimitReached(f"The {ctx.plan.value} plan allows {limit} plugin(s)")
                install = await UserPlugin.create(user_id=ctx.user_id, plugin=plugin, config=config)
        except IntegrityError:
            raise AlreadyInstalled("The plugin is installed already")
        try:
            await self.executor.run_hook(install, "on_install", ctx)
        except Exception:
            await install.delete()
            raise
        await audit.record(ctx, "plugin.install", "plugin", plugin.id, {"slug": plugin.slug})
        return install

    async def uninstall(self, ctx: ServiceContext, plugin_id: str) -> bool:
        install = await self._install_of(ctx, plugin_id)
        hook_error = await self._stopping_hook(ctx, install, "on_uninstall")
        async with in_transaction():
            await install.delete()
            metadata = {"slug": install.plugin.slug, **({"hookError": hook_error} if hook_error else {})}
            await audit.record(ctx, "plugin.uninstall", "plugin", plugin_id, metadata)
        return True

    async def update_config(self, ctx: ServiceContext, request: ConfigUpdateRequest) -> UserPlugin:
        install = await self._install_of(ctx, request.plugin_id)
        config = validate_config(install.plugin.config_schema, request.config)
        async with in_transaction():
            install.config = config
            await install.save(update_fields=["config", "updated_at"])
            await audit.record(
                ctx, "plugin.config_update", "plugin", request.plugin_id, {"slug": install.plugin.slug}
            )
        return install

    async def toggle(self, ctx: ServiceContext, plugin_id: str, enabled: bool) -> UserPlugin:
        install = await self._install_of(ctx, plugin_id)
        if install.is_enabled == enabled:
            return install
        if enabled:
            # A config that stopped validating after a plugin upgrade must be fixed first.
            validate_config(install.plugin.config_schema, install.config)
        fields = ["is_enabled", "updated_at"]
        metadata: dict[str, object] = {"slug": install.plugin.slug, "enabled": enabled}
        if enabled:
            await self.executor.run_hook(install, "on_enable", ctx)
            if install.last_error and install.last_error.startswith(UPGRADE_ERROR_PREFIX):
                install.last_error = None
                fields.append("last_error")
        elif hook_error := await self._stopping_hook(ctx, install, "on_disable"):
            install.last_error = hook_error
            fields.append("last_error")
            metadata["hookError"] = hook_error
        async with in_transaction():
            install.is_enabled = enabled
            await install.save(update_fields=fields)
            await audit.record(ctx, "plugin.toggle", "plugin", plugin_id, metadata)
        return install

    async def _stopping_hook(self, ctx: ServiceContext, install: UserPlugin, hook: str) -> str | None:
        """Runs on_disable or on_uninstall. Their failure never keeps a plugin running: it is
        returned, to be recorded, and the operation goes ahead."""
        try:
            await self.executor.run_hook(install, hook, ctx)
        except PluginFailed as exc:
            return exc.message
        return None

    async def _install_of(self, ctx: ServiceContext, plugin_id: str) -> UserPlugin:
        if not await Plugin.exists(id=plugin_id):
            raise NotFound("No such plugin")
        install = await UserPlugin.get_or_none(user_id=ctx.user_id, plugin_id=plugin_id).select_related("plugin")
        if install is None:
            raise NotInstalled("The plugin is not installed")
        return install


UPGRADE_ERROR_PREFIX = "Disabled by plugin upgrade"


def describe_config_errors(exc: Any) -> str:
    return "; ".join(f"{e.path or '/'} {e.message}" for e in exc.errors)

"""The plugin API: catalog, installs, config and enablement, for one service context at a time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tortoise import timezone
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
from app.plugins.registry import needed_update_types
from app.settings import Settings


class PluginService:
    def __init__(
        self,
        settings: Settings,
        executor: Executor,
        installs_changed: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.executor = executor
        # Called with the user's id after an install, uninstall or toggle (to re-register webhooks).
        self.installs_changed = installs_changed

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
        limit = self.settings.plan_limit(ctx.plan.value)
        # The cheap refusals first: an install that cannot happen never pays for validating its config.
        await self._check_room(ctx, plugin, limit)
        config = validate_config(plugin.config_schema, request.config)
        try:
            async with in_transaction():
                # Lock the user row: concurrent installs of one user queue here, so the count holds.
                user = await User.filter(id=ctx.user_id).select_for_update().first()
                if user is None:
                    raise Unauthenticated("Unknown user")
                await self._check_room(ctx, plugin, limit)
                install = await UserPlugin.create(user_id=ctx.user_id, plugin=plugin, config=config)
        except IntegrityError:
            raise AlreadyInstalled("The plugin is installed already")
        try:
            await self._hook(install, "on_install", ctx)
        except Exception:
            await UserPlugin.filter(id=install.id).delete()
            raise
        await audit.record(ctx, "plugin.install", "plugin", plugin.id, {"slug": plugin.slug})
        await self._installs_changed(ctx)
        return install

    async def update_types_for(self, user_id: str) -> list[str]:
        """The Telegram update types the user's enabled installs handle."""
        slugs = await UserPlugin.filter(user_id=user_id, is_enabled=True, plugin__is_active=True).values_list(
            "plugin__slug", flat=True
        )
        registry = self.executor.registry
        return needed_update_types(h for h in (registry.get(slug) for slug in slugs) if h is not None)

    async def _installs_changed(self, ctx: ServiceContext) -> None:
        if self.installs_changed is not None:
            await self.installs_changed(ctx.user_id)

    async def _check_room(self, ctx: ServiceContext, plugin: Plugin, limit: int | None) -> None:
        if await UserPlugin.exists(user_id=ctx.user_id, plugin_id=plugin.id):
            raise AlreadyInstalled("The plugin is installed already")
        if limit is not None and await UserPlugin.filter(user_id=ctx.user_id).count() >= limit:
            raise PlanLimitReached(f"The {ctx.plan.value} plan allows {limit} plugin(s)")

    # Each change below is a conditional write that counts the rows it touched: of several
    # concurrent calls on one install, only those that found it change it, and an install
    # deleted meanwhile is NOT_INSTALLED, never "updated".

    async def uninstall(self, ctx: ServiceContext, plugin_id: str) -> bool:
        install = await self._install_of(ctx, plugin_id)
        hook_error = await self._stopping_hook(ctx, install, "on_uninstall")
        async with in_transaction():
            if not await UserPlugin.filter(id=install.id).delete():
                raise NotInstalled("The plugin is not installed")  # another call uninstalled it first
            metadata = {"slug": install.plugin.slug, **({"hookError": hook_error} if hook_error else {})}
            await audit.record(ctx, "plugin.uninstall", "plugin", plugin_id, metadata)
        await self._installs_changed(ctx)
        return True

    async def update_config(self, ctx: ServiceContext, request: ConfigUpdateRequest) -> UserPlugin:
        install = await self._install_of(ctx, request.plugin_id)
        config = validate_config(install.plugin.config_schema, request.config)
        now = timezone.now()
        async with in_transaction():
            if not await UserPlugin.filter(id=install.id).update(config=config, updated_at=now):
                raise NotInstalled("The plugin is not installed")
            await audit.record(
                ctx, "plugin.config_update", "plugin", request.plugin_id, {"slug": install.plugin.slug}
            )
        install.config, install.updated_at = config, now
        return install

    async def toggle(self, ctx: ServiceContext, plugin_id: str, enabled: bool) -> UserPlugin:
        install = await self._install_of(ctx, plugin_id)
        if install.is_enabled == enabled:
            return install
        if enabled:
            # A config that stopped validating after a plugin upgrade must be fixed first.
            validate_config(install.plugin.config_schema, install.config)
        changes: dict[str, Any] = {"is_enabled": enabled, "updated_at": timezone.now()}
        metadata: dict[str, object] = {"slug": install.plugin.slug, "enabled": enabled}
        if enabled:
            await self._hook(install, "on_enable", ctx)
            if install.last_error and install.last_error.startswith(UPGRADE_ERROR_PREFIX):
                changes["last_error"] = None
        elif hook_error := await self._stopping_hook(ctx, install, "on_disable"):
            changes["last_error"] = hook_error
            metadata["hookError"] = hook_error
        async with in_transaction():
            changed = await UserPlugin.filter(id=install.id, is_enabled=not enabled).update(**changes)
            if changed:
                await audit.record(ctx, "plugin.toggle", "plugin", plugin_id, metadata)
        if not changed:
            # Uninstalled meanwhile, or another call made the same change first (and recorded it).
            return await self._install_of(ctx, plugin_id)
        for name, value in changes.items():
            setattr(install, name, value)
        await self._installs_changed(ctx)
        return install

    async def _hook(self, install: UserPlugin, hook: str, ctx: ServiceContext) -> None:
        try:
            await self.executor.run_hook(install, hook, ctx)
        except IntegrityError:
            # The hook's storage writes point at the install: they fail when it was just uninstalled.
            if not await UserPlugin.exists(id=install.id):
                raise NotInstalled("The plugin is not installed")
            raise

    async def _stopping_hook(self, ctx: ServiceContext, install: UserPlugin, hook: str) -> str | None:
        """Runs on_disable or on_uninstall. Their failure never keeps a plugin running: it is
        returned, to be recorded, and the operation goes ahead."""
        try:
            await self._hook(install, hook, ctx)
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

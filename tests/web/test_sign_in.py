"""Signing in with an API token, in a real browser: kept in the browser, sent as the bearer
token, never in a URL; "Sign out" forgets it."""

from __future__ import annotations

from playwright.async_api import expect


async def test_the_root_leads_to_the_app_and_a_page_without_a_token_shows_the_sign_in_form(app, tab):
    await tab.goto("/")
    await expect(tab.page).to_have_url(f"{app.url}/my-plugins")
    await expect(tab.page.get_by_role("heading", name="Sign in to Plugboard")).to_be_visible()
    await expect(tab.page.get_by_label("API token")).to_be_visible()
    await expect(tab.page.get_by_role("button", name="Sign in")).to_be_visible()

    for path in ("/plugins", "/sign-in"):
        await tab.goto(path)
        await expect(tab.page.get_by_label("API token")).to_be_visible()
        await expect(tab.page.get_by_role("link", name="Plugins")).to_have_count(0)  # no app navigation yet
    tab.assert_no_console_errors()


async def test_an_unknown_token_is_refused_in_words_and_not_kept(app, tab):
    await tab.goto("/my-plugins")
    await tab.page.get_by_label("API token").fill("pb_not-a-real-token-at-all")
    await tab.page.get_by_role("button", name="Sign in").click()

    await expect(tab.page.get_by_role("alert")).to_have_text(
        "That token was not recognised. Check that you copied all of it."
    )
    await expect(tab.page.get_by_label("API token")).to_have_attribute("aria-invalid", "true")
    assert await tab.stored_token() is None

    await tab.page.get_by_label("API token").press("Backspace")  # being corrected: the error goes
    await expect(tab.page.get_by_label("API token")).not_to_have_attribute("aria-invalid", "true")
    await expect(tab.page.get_by_text("That token was not recognised.")).to_have_count(0)
    tab.assert_no_console_errors()


async def test_the_hint_says_how_to_make_a_token_with_the_projects_interpreter(app, tab):
    """The system python3 lacks the dependencies: the hint names .venv/bin/python, or make cli."""
    await tab.goto("/sign-in")
    await expect(tab.page.get_by_label("API token")).to_have_accessible_description(
        "Create one in Plugboard's folder with .venv/bin/python -m app create-user you@example.com "
        '(or make cli ARGS="create-user you@example.com"), or try .venv/bin/python -m app demo. '
        "It stays in this browser until you sign out."
    )


async def test_signing_in_sends_the_token_as_a_bearer_header_only_and_signing_out_forgets_it(app, tab):
    user = await app.create_user("ada@example.com", "pro")
    await tab.sign_in(user.token, "/plugins")

    await expect(tab.page.get_by_text("ada@example.com")).to_be_visible()
    await expect(tab.page.get_by_role("heading", name="Plugins", exact=True)).to_be_visible()
    assert await tab.stored_token() == user.token

    # Still signed in on another page and after a reload: the browser keeps it.
    await tab.goto("/my-plugins")
    await tab.page.reload()
    await expect(tab.page.get_by_role("heading", name="My plugins")).to_be_visible()

    api_calls = [headers for url, headers in tab.requests if url == f"{app.url}/graphql"]
    assert api_calls and all(h.get("authorization") == f"Bearer {user.token}" for h in api_calls)
    assert all(user.token not in url for url, _ in tab.requests)
    assert all(user.token not in url for url in tab.websockets)

    await tab.page.get_by_role("button", name="Sign out").click()
    await expect(tab.page.get_by_label("API token")).to_be_visible()
    assert await tab.stored_token() is None
    await tab.page.reload()
    await expect(tab.page.get_by_label("API token")).to_be_visible()
    tab.assert_no_console_errors()


async def test_a_token_revoked_while_signed_in_brings_back_the_sign_in_form(app, tab):
    user = await app.create_user("ada@example.com", "pro")
    await tab.sign_in(user.token, "/plugins")
    await tab.page.evaluate("() => localStorage.setItem('plugboard:token', 'pb_revoked-token-0000000000000')")

    await tab.goto("/my-plugins")
    await expect(tab.page.get_by_role("alert")).to_contain_text("not valid any more")
    await expect(tab.page.get_by_label("API token")).to_be_visible()
    assert await tab.stored_token() is None
    tab.assert_no_console_errors()

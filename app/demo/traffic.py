"""Realistic Telegram updates for the demo: messages from a few dozen people across a few chats,
channel posts, edits, and people joining and leaving (a `new_chat_members` or `left_chat_member`
service message together with the `chat_member` update Telegram sends beside it)."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

FIRST_NAMES = (
    "Ada", "Alan", "Grace", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Radia", "Guido", "Frances", "Tim",
    "Katherine", "Donald", "Hedy", "Edsger", "Sophie", "Yukihiro", "Jean", "Bjarne", "Anita", "John", "Mary",
    "Niklaus", "Adele", "Leslie", "Joan", "Brian", "Carol", "Vint", "Lynn", "Whitfield", "Evelyn", "Rasmus",
    "Shafi", "Ward", "Elena", "Rob", "Ida", "Jim",
)

PHRASES = (
    "Good morning everyone!", "Has anyone tried the new release?", "Thanks, that fixed it 🙌", "Meeting at 3?",
    "Here's the link to the doc", "Can someone review my PR?", "I'll take a look after lunch", "+1",
    "Agreed, let's ship it", "What time zone are we using?", "Photos from Saturday are up", "Great idea!",
    "Is the trail open this weekend?", "Any recommendations for a good keyboard?", "brb", "lol 😄",
    "Welcome aboard!", "Can we move this to Thursday?", "Done ✅", "Looks good to me", "Who's in?",
    "The build is green again", "Coffee first ☕", "Let me check and get back to you",
)

# Relative activity by UTC hour: quiet nights, a morning peak and a bigger evening one.
HOUR_WEIGHTS = (
    1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 9,
    8, 9, 9, 8, 8, 9, 11, 12, 11, 8, 5, 2,
)


@dataclass(frozen=True)
class DemoChat:
    id: int
    kind: str  # "supergroup", "group" or "channel"
    title: str
    weight: int  # how busy it is, relative to the others


CHATS = (
    DemoChat(-1001987650001, "supergroup", "Plugboard Community", 6),
    DemoChat(-1001987650002, "supergroup", "Product Team", 4),
    DemoChat(-1001987650003, "supergroup", "Weekend Hikers", 2),
    DemoChat(-4019876504, "group", "Book Club", 1),
    DemoChat(-1001987650005, "channel", "Release Notes", 1),
)


class Traffic:
    """Makes updates in order; `counts` says what it made so far (messages, posts, edits, joins, leaves)."""

    def __init__(self, rng: random.Random, people: int = 36) -> None:
        self.rng = rng
        self.update_ids = itertools.count(1)
        self.message_ids = itertools.count(1)
        self.people: list[dict[str, Any]] = [{"id": 6_100_000 + i, "is_bot": False, "first_name": FIRST_NAMES[i % len(FIRST_NAMES)]}
                       for i in range(people)]
        self.groups = [chat for chat in CHATS if chat.kind != "channel"]
        self.channels = [chat for chat in CHATS if chat.kind == "channel"]
        # Everyone starts in one to three groups, so there is always someone left to join.
        self.members: dict[int, set[int]] = {chat.id: set() for chat in self.groups}
        for person in self.people:
            for chat in rng.sample(self.groups, rng.randint(1, 3)):
                self.members[chat.id].add(person["id"])
        self.recent: list[dict[str, Any]] = []  # recent messages, for edits
        self.counts: Counter[str] = Counter()

    # --- one moment of activity ------------------------------------------------------------

    def next_updates(self, at: int) -> list[dict[str, Any]]:
        """The updates of one thing happening at Unix time `at` (one or two updates)."""
        roll = self.rng.random()
        if roll < 0.04:
            return self.join(at)
        if roll < 0.065:
            return self.leave(at)
        if roll < 0.10 and self.channels:
            return [self.channel_post(at)]
        if roll < 0.12 and self.recent:
            return [self.edit(at)]
        return [self.message(at)]

    def day(self, start: int, size: int) -> list[dict[str, Any]]:
        """About `size` messages spread over the UTC day starting at `start`, with a few joins and leaves."""
        moments = sorted(start + self.moment_in_day() for _ in range(size))
        updates: list[dict[str, Any]] = []
        for at in moments:
            updates += self.next_updates(at)
        return updates

    def moment_in_day(self) -> int:
        hour = self.rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
        return hour * 3600 + self.rng.randrange(3600)

    # --- kinds of update -------------------------------------------------------------------

    def message(self, at: int) -> dict[str, Any]:
        chat = self.busy_group()
        if not self.members[chat.id]:
            self.members[chat.id].add(self.rng.choice(self.people)["id"])
        sender = self.person(self.rng.choice(sorted(self.members[chat.id])))
        message = self._message(chat, at, **{"from": sender, "text": self.rng.choice(PHRASES)})
        self.recent = [*self.recent[-20:], message]
        self.counts["messages"] += 1
        return self._update("message", message)

    def channel_post(self, at: int) -> dict[str, Any]:
        chat = self.rng.choice(self.channels)
        text = f"Release {self.rng.randint(1, 9)}.{self.rng.randint(0, 30)} is out: {self.rng.choice(PHRASES)}"
        self.counts["channel posts"] += 1
        return self._update("channel_post", self._message(chat, at, sender_chat=self._chat(chat), text=text))

    def edit(self, at: int) -> dict[str, Any]:
        original = self.rng.choice(self.recent)
        self.counts["edits"] += 1
        return self._update("edited_message", {**original, "edit_date": max(at, original["date"]), "text": original["text"] + " (edited)"})

    def join(self, at: int) -> list[dict[str, Any]]:
        chat = self.rng.choice(self.groups)
        outside = [p["id"] for p in self.people if p["id"] not in self.members[chat.id]]
        if not outside:
            return [self.message(at)]
        person = self.person(self.rng.choice(outside))
        self.members[chat.id].add(person["id"])
        self.counts["joins"] += 1
        return [
            self._update("message", self._message(chat, at, **{"from": person, "new_chat_members": [person]})),
            self._member_change(chat, person, at, "left", "member"),
        ]

    def leave(self, at: int) -> list[dict[str, Any]]:
        chat = self.rng.choice(self.groups)
        if len(self.members[chat.id]) <= 3:
            return [self.message(at)]
        person = self.person(self.rng.choice(sorted(self.members[chat.id])))
        self.members[chat.id].discard(person["id"])
        self.counts["leaves"] += 1
        return [
            self._member_change(chat, person, at, "member", "left"),
            self._update("message", self._message(chat, at, **{"from": person, "left_chat_member": person})),
        ]

    # --- shapes ------------------------------------------------------------------------------

    def busy_group(self) -> DemoChat:
        return self.rng.choices(self.groups, weights=[chat.weight for chat in self.groups])[0]

    def person(self, person_id: int) -> dict[str, Any]:
        return next(p for p in self.people if p["id"] == person_id)

    def _chat(self, chat: DemoChat) -> dict[str, Any]:
        return {"id": chat.id, "type": chat.kind, "title": chat.title}

    def _message(self, chat: DemoChat, at: int, **fields: Any) -> dict[str, Any]:
        return {"message_id": next(self.message_ids), "date": at, "chat": self._chat(chat), **fields}

    def _member_change(self, chat: DemoChat, person: dict[str, Any], at: int, old: str, new: str) -> dict[str, Any]:
        return self._update("chat_member", {
            "chat": self._chat(chat),
            "from": person,
            "date": at,
            "old_chat_member": {"status": old, "user": person},
            "new_chat_member": {"status": new, "user": person},
        })

    def _update(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"update_id": next(self.update_ids), kind: body}


def chat_titles() -> dict[int, tuple[str, str]]:
    return {chat.id: (chat.kind, chat.title) for chat in CHATS}

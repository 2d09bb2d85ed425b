"""Realistic Telegram updates for the demo: messages from a few dozen named people across a few
chats (mostly text, and photos, stickers, voice messages, polls… shaped as Telegram sends them),
channel posts, edits, and people joining and leaving (a `new_chat_members` or `left_chat_member`
service message together with the `chat_member` update Telegram sends beside it). Beside them,
members who never post come and go (a channel's subscribers, mostly), so the member counts the
stand-in Bot API gives grow slowly, as a living community's do."""

from __future__ import annotations

import bisect
import itertools
import random
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, NamedTuple

from app.telegram import content as kinds

FIRST_NAMES = (
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Radia",
    "Guido",
    "Frances",
    "Tim",
    "Katherine",
    "Donald",
    "Hedy",
    "Edsger",
    "Sophie",
    "Yukihiro",
    "Jean",
    "Bjarne",
    "Anita",
    "John",
    "Mary",
    "Niklaus",
    "Adele",
    "Leslie",
    "Joan",
    "Brian",
    "Carol",
    "Vint",
    "Lynn",
    "Whitfield",
    "Evelyn",
    "Rasmus",
    "Shafi",
    "Ward",
    "Elena",
    "Rob",
    "Ida",
    "Jim",
)

PHRASES = (
    "Good morning everyone!",
    "Has anyone tried the new release?",
    "Thanks, that fixed it 🙌",
    "Meeting at 3?",
    "Here's the link to the doc",
    "Can someone review my PR?",
    "I'll take a look after lunch",
    "+1",
    "Agreed, let's ship it",
    "What time zone are we using?",
    "Photos from Saturday are up",
    "Great idea!",
    "Is the trail open this weekend?",
    "Any recommendations for a good keyboard?",
    "brb",
    "lol 😄",
    "Welcome aboard!",
    "Can we move this to Thursday?",
    "Done ✅",
    "Looks good to me",
    "Who's in?",
    "The build is green again",
    "Coffee first ☕",
    "Let me check and get back to you",
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

CHAT_BY_ID = {chat.id: chat for chat in CHATS}
# Members who never post (and a channel's subscribers): Telegram's member count holds them too,
# beside the people who talk and the bot itself.
SILENT_MEMBERS = {
    -1001987650001: 212,
    -1001987650002: 3,
    -1001987650003: 41,
    -4019876504: 2,
    -1001987650005: 1_180,
}


# Members who never post joining (or leaving) each chat, relative to each other: mostly the channel.
SILENT_DRIFT_WEIGHTS = {
    -1001987650001: 6,
    -1001987650002: 1,
    -1001987650003: 2,
    -4019876504: 1,
    -1001987650005: 10,
}
SILENT_JOIN, SILENT_LEAVE = 0.0022, 0.0012  # chances, at each thing that happens
# What people post, by kind of content (app/telegram/content.py), relative to each other.
CONTENT_MIX = (
    (kinds.TEXT, 140),
    (kinds.PHOTO, 18),
    (kinds.STICKER, 14),
    (kinds.VOICE, 8),
    (kinds.VIDEO, 4),
    (kinds.ANIMATION, 4),
    (kinds.DOCUMENT, 3),
    (kinds.VIDEO_NOTE, 2),
    (kinds.POLL, 2),
    (kinds.LOCATION, 2),
    (kinds.AUDIO, 1),
    (kinds.CONTACT, 1),
)
_CONTENT_WEIGHTS = list(itertools.accumulate(weight for _, weight in CONTENT_MIX))


class Thing(NamedTuple):
    kind: str  # "message", "channel post", "edit", "join" or "leave"
    chat: DemoChat
    person: dict[str, Any] | None = None  # who posts, joins or leaves
    original: dict[str, Any] | None = None  # the message an edit changes
    content: str | None = None  # the kind of content of the message it brings (none for an edit)


class Traffic:
    """Makes updates in order; `counts` says what it made so far (messages, posts, edits, joins, leaves).
    When things happen is the pace's business (pace.py): this says what happens."""

    def __init__(self, rng: random.Random, people: int = 36) -> None:
        self.rng = rng
        self.update_ids = itertools.count(1)
        self.message_ids = itertools.count(1)
        self.file_ids = itertools.count(1)
        self.people: list[dict[str, Any]] = [
            {"id": 6_100_000 + i, "is_bot": False, "first_name": FIRST_NAMES[i % len(FIRST_NAMES)]}
            for i in range(people)
        ]
        for i, person in enumerate(self.people):
            if i % 3:  # most have a username, some do not
                person["username"] = f"{person['first_name'].lower()}_{i}"
        self.by_id = {person["id"]: person for person in self.people}
        self.groups = [chat for chat in CHATS if chat.kind != "channel"]
        self.channels = [chat for chat in CHATS if chat.kind == "channel"]
        # Everyone starts in one to three groups, so there is always someone left to join.
        self.members: dict[int, set[int]] = {chat.id: set() for chat in self.groups}
        for person in self.people:
            for chat in rng.sample(self.groups, rng.randint(1, 3)):
                self.members[chat.id].add(person["id"])
        self._in_chat: dict[int, tuple[int, ...]] = {}  # members as a tuple, to choose from
        self.group_weights = list(itertools.accumulate(chat.weight for chat in self.groups))
        self.recent: deque[dict[str, Any]] = deque(maxlen=21)  # recent text messages, for edits
        self.counts: Counter[str] = Counter()
        self.silent = dict(SILENT_MEMBERS)
        self.drift_chats = [chat.id for chat in CHATS]
        self.drift_weights = list(itertools.accumulate(SILENT_DRIFT_WEIGHTS[chat.id] for chat in CHATS))

    # --- one moment of activity ------------------------------------------------------------

    def member_count(self, chat_id: int) -> int | None:
        """The chat's member count as Telegram tells it (getChatMemberCount): None for a chat the
        community does not have."""
        if chat_id not in CHAT_BY_ID:
            return None
        talking = len(self.members.get(chat_id, ()))
        return self.silent[chat_id] + talking + 1  # + the bot

    def next_thing(self) -> Thing:
        """What happens next (who joins or leaves which chat changes who is in it); no update yet.
        Members who never post may come or go at the same time: no update, only the member count."""
        self._drift()
        return self._counted(self._choose())

    def _drift(self) -> None:
        roll = self.rng.random()
        if roll < SILENT_JOIN + SILENT_LEAVE:
            chat_id = self.drift_chats[bisect.bisect(self.drift_weights, self.rng.random() * self.drift_weights[-1])]
            self.silent[chat_id] = max(0, self.silent[chat_id] + (1 if roll < SILENT_JOIN else -1))

    def newcomer(self) -> Thing:
        """Someone joins a group now: how the live traffic opens, so that Welcome's greeting and the
        counts move within seconds of the start at any hour, even at night's slow pace."""
        return self._counted(self.join())

    def _counted(self, thing: Thing) -> Thing:
        self.counts[thing.kind + "s"] += 1
        return thing

    def _choose(self) -> Thing:
        roll = self.rng.random()
        if roll < 0.04:
            return self.join()
        if roll < 0.065:
            return self.leave()
        if roll < 0.10 and self.channels:
            return Thing("channel post", self.rng.choice(self.channels), content=kinds.TEXT)
        if roll < 0.12 and self.recent:
            original = self.rng.choice(self.recent)
            return Thing("edit", CHAT_BY_ID[original["chat"]["id"]], original=original)
        return self.message()

    def next_updates(self, at: int) -> list[dict[str, Any]]:
        """The updates of the next thing, happening at Unix time `at` (one or two updates)."""
        return self.updates(self.next_thing(), at)

    def updates(self, thing: Thing, at: int) -> list[dict[str, Any]]:
        """The updates Telegram sends for `thing` at Unix time `at`."""
        chat, person = thing.chat, thing.person
        if thing.kind == "message":
            message = self._message(chat, at, **{"from": person}, **self._content(thing.content or kinds.TEXT))
            if "text" in message:
                self.recent.append(message)
            return [self._update("message", message)]
        if thing.kind == "channel post":
            text = f"Release {self.rng.randint(1, 9)}.{self.rng.randint(0, 30)} is out: {self.rng.choice(PHRASES)}"
            return [self._update("channel_post", self._message(chat, at, sender_chat=self._chat(chat), text=text))]
        if thing.kind == "edit":
            original = thing.original or {}
            return [
                self._update(
                    "edited_message",
                    {**original, "edit_date": max(at, original["date"]), "text": original["text"] + " (edited)"},
                )
            ]
        assert person is not None  # a join or a leave names who
        if thing.kind == "join":
            return [
                self._update("message", self._message(chat, at, **{"from": person, "new_chat_members": [person]})),
                self._member_change(chat, person, at, "left", "member"),
            ]
        return [  # a leave
            self._member_change(chat, person, at, "member", "left"),
            self._update("message", self._message(chat, at, **{"from": person, "left_chat_member": person})),
        ]

    # --- kinds of thing ----------------------------------------------------------------------

    def message(self) -> Thing:
        chat = self.busy_group()
        if not self.members[chat.id]:
            self.members[chat.id].add(self.rng.choice(self.people)["id"])
            self._in_chat.pop(chat.id, None)
        in_chat = self._in_chat.get(chat.id)
        if in_chat is None:  # read again only after a join or leave: the past makes many messages
            in_chat = self._in_chat[chat.id] = tuple(self.members[chat.id])
        person = self.person(self.rng.choice(in_chat))
        content = CONTENT_MIX[bisect.bisect(_CONTENT_WEIGHTS, self.rng.random() * _CONTENT_WEIGHTS[-1])][0]
        return Thing("message", chat, person, content=content)

    def join(self) -> Thing:
        chat = self.rng.choice(self.groups)
        outside = [p["id"] for p in self.people if p["id"] not in self.members[chat.id]]
        if not outside:
            return self.message()
        person = self.person(self.rng.choice(outside))
        self.members[chat.id].add(person["id"])
        self._in_chat.pop(chat.id, None)
        return Thing("join", chat, person, content=kinds.SERVICE)

    def leave(self) -> Thing:
        chat = self.rng.choice(self.groups)
        if len(self.members[chat.id]) <= 3:
            return self.message()
        person = self.person(self.rng.choice(sorted(self.members[chat.id])))
        self.members[chat.id].discard(person["id"])
        self._in_chat.pop(chat.id, None)
        return Thing("leave", chat, person, content=kinds.SERVICE)

    def message_update(self, at: int) -> dict[str, Any]:
        """A message in a busy group at `at` (uncounted)."""
        return self.updates(self.message(), at)[0]

    # --- shapes ------------------------------------------------------------------------------

    def busy_group(self) -> DemoChat:
        return self.groups[bisect.bisect(self.group_weights, self.rng.random() * self.group_weights[-1])]

    def person(self, person_id: int) -> dict[str, Any]:
        return self.by_id[person_id]

    def _content(self, kind: str) -> dict[str, Any]:
        """A message's fields for its kind of content, as Telegram sends them (tests/support/update_corpus.py)."""
        n = next(self.file_ids)
        if kind == kinds.PHOTO:
            photo = [_file(f"p{n}s", width=90, height=60), _file(f"p{n}", width=1280, height=960)]
            return {"photo": photo, "caption": self.rng.choice(PHRASES)} if n % 2 else {"photo": photo}
        if kind == kinds.STICKER:
            emoji = self.rng.choice(("👍", "😂", "🎉", "🙏"))
            return {
                "sticker": _file(
                    f"s{n}", type="regular", width=512, height=512, is_animated=False, is_video=False, emoji=emoji
                )
            }
        if kind == kinds.VOICE:
            return {"voice": _file(f"v{n}", duration=self.rng.randint(2, 60), mime_type="audio/ogg")}
        if kind == kinds.VIDEO:
            return {"video": _file(f"m{n}", width=1280, height=720, duration=self.rng.randint(5, 120))}
        if kind == kinds.ANIMATION:
            gif = _file(f"a{n}", width=320, height=240, duration=3)
            return {"animation": gif, "document": _file(f"a{n}")}  # Telegram sends both
        if kind == kinds.DOCUMENT:
            return {"document": _file(f"d{n}", file_name="notes.pdf", mime_type="application/pdf")}
        if kind == kinds.VIDEO_NOTE:
            return {"video_note": _file(f"n{n}", length=240, duration=self.rng.randint(3, 30))}
        if kind == kinds.AUDIO:
            return {"audio": _file(f"u{n}", duration=200, performer="The Band", title="Demo tape")}
        if kind == kinds.LOCATION:
            return {
                "location": {"latitude": 28.61 + self.rng.random() / 10, "longitude": 77.2 + self.rng.random() / 10}
            }
        if kind == kinds.CONTACT:
            return {"contact": {"phone_number": "+911234567890", "first_name": self.rng.choice(FIRST_NAMES)}}
        if kind == kinds.POLL:
            options = [
                {"persistent_id": f"o{i}", "text": text, "voter_count": 0}
                for i, text in enumerate(("Yes", "No", "Maybe"))
            ]
            return {
                "poll": {
                    "id": str(n),
                    "question": self.rng.choice(("Meet on Thursday?", "Ship it?", "Pizza or curry?")),
                    "options": options,
                    "total_voter_count": 0,
                    "is_closed": False,
                    "is_anonymous": False,
                    "type": "regular",
                    "allows_multiple_answers": False,
                    "allows_revoting": False,
                    "members_only": False,
                }
            }
        return {"text": self.rng.choice(PHRASES)}

    def _chat(self, chat: DemoChat) -> dict[str, Any]:
        return {"id": chat.id, "type": chat.kind, "title": chat.title}

    def _message(self, chat: DemoChat, at: int, **fields: Any) -> dict[str, Any]:
        return {"message_id": next(self.message_ids), "date": at, "chat": self._chat(chat), **fields}

    def _member_change(self, chat: DemoChat, person: dict[str, Any], at: int, old: str, new: str) -> dict[str, Any]:
        return self._update(
            "chat_member",
            {
                "chat": self._chat(chat),
                "from": person,
                "date": at,
                "old_chat_member": {"status": old, "user": person},
                "new_chat_member": {"status": new, "user": person},
            },
        )

    def _update(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"update_id": next(self.update_ids), kind: body}


def _file(unique: str, **fields: Any) -> dict[str, Any]:
    return {"file_id": f"demo-{unique}", "file_unique_id": unique, **fields}


def chat_titles() -> dict[int, tuple[str, str]]:
    return {chat.id: (chat.kind, chat.title) for chat in CHATS}

"""What every merchant can ask for at any time: help, and the language the bot speaks."""

from __future__ import annotations

from bot.delivery.callbacks import LanguageChoice
from bot.i18n import Translator
from bot.services.dialogues import Dialogues
from bot.services.registry import Registry
from bot.services.render import inline_keyboard
from bot.services.turn import Turn

# What people type after /language: `/language en`, `/language 中文`...
SPOKEN = {
    "en": "en",
    "english": "en",
    "英文": "en",
    "英语": "en",
    "zh": "zh_CN",
    "zh_cn": "zh_CN",
    "zh-cn": "zh_CN",
    "cn": "zh_CN",
    "chinese": "zh_CN",
    "中文": "zh_CN",
    "汉语": "zh_CN",
    "简体中文": "zh_CN",
}


class Preferences:
    def __init__(self, dialogues: Dialogues, default_locale: str) -> None:
        self.dialogues = dialogues
        self.default_locale = default_locale

    def register(self, registry: Registry) -> None:
        registry.command("help", self.help)
        registry.command("language", self.language)
        registry.button(LanguageChoice, self.on_language_button)

    async def help(self, turn: Turn) -> None:
        turn.say_text("help.text")
        self.dialogues.reprompt(turn)

    async def language(self, turn: Turn) -> None:
        wanted = turn.incoming.args.strip()
        if wanted:
            locale = SPOKEN.get(wanted.casefold())
            if locale is not None:
                await self.set_language(turn, locale)
                return
            turn.say_text("language.unknown", given=wanted[:20])
        rows = [[(turn.t("button.lang_zh"), LanguageChoice("zh_CN")), (turn.t("button.lang_en"), LanguageChoice("en"))]]
        turn.say_text("language.choose", inline_keyboard(rows))

    async def on_language_button(self, turn: Turn, data: LanguageChoice) -> None:
        await self.set_language(turn, data.locale)

    async def set_language(self, turn: Turn, locale: str) -> None:
        turn.conversation.locale = locale
        turn.conversation.locale_chosen = True
        turn.t = Translator(locale, self.default_locale)
        merchant = await turn.merchant()
        if merchant is not None:
            merchant.locale = locale
        submission = await self.dialogues.submission(turn)
        if submission is not None:
            submission.locale = locale
        turn.say_text("language.set")
        self.dialogues.reprompt(turn)

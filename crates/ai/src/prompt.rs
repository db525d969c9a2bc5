//! What a question carries to a backend: the system prompt, the conversation so far with
//! sender names, the question, and facts about the room the built-in assistant answers from.

/// One question, with its context.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    /// Instructions for the model (the operator's system prompt).
    pub system: String,
    /// The bot's own name, so the model knows which earlier messages were its own.
    pub bot_name: String,
    /// Who asks.
    pub asker: String,
    /// The question, without the `@bot` mention.
    pub question: String,
    /// Recent messages of the room, oldest first, not including the question.
    pub history: Vec<ContextMessage>,
    /// About the room.
    pub room: RoomFacts,
}

/// A message of the conversation so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContextMessage {
    /// Who wrote it.
    pub sender: String,
    /// What they wrote.
    pub text: String,
    /// When, in unix milliseconds.
    pub ts: u64,
    /// Written by the bot itself.
    pub from_bot: bool,
}

/// What the built-in assistant knows of the room.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomFacts {
    /// The room's name (for a direct chat, the other user's).
    pub name: String,
    /// A direct chat with the bot.
    pub direct: bool,
    /// Its members.
    pub members: Vec<MemberFact>,
    /// How many messages the room has ever had.
    pub total_messages: u64,
}

/// A member of the room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberFact {
    /// Their name.
    pub name: String,
    /// Their presence.
    pub presence: Presence,
}

/// A member's presence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// Connected.
    Online,
    /// Connected, marked away.
    Away,
    /// Not connected.
    Offline,
}

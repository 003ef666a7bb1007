//! What follows a failed attempt or a lost link: the backoff's decision, the
//! `Reconnecting` event with the instant the next attempt is due, or giving up.
#![forbid(unsafe_code)]

use std::time::Instant;

use log::{info, warn};

use super::{Command, Phase, Session};
use crate::backoff::Decision;
use crate::{Error, Event};

impl Session {
    /// Ends the attempt in progress with `error`.
    pub(super) fn fail_now(&mut self, error: Error, now: Instant) {
        let phase = std::mem::replace(&mut self.phase, Phase::Stopped);
        self.phase = match phase {
            Phase::Connecting(attempt) => self.attempt_failed(attempt.number, error, now),
            other => other,
        };
    }

    /// Attempt `number` failed with `error` at `now`: report, then back off or give up.
    pub(super) fn attempt_failed(&mut self, number: u64, error: Error, now: Instant) -> Phase {
        self.commands.push_back(Command::Abort);
        warn!("connect attempt {number} failed: {error}");
        let retry_after = match &error {
            Error::HttpStatus {
                status: 429 | 503,
                retry_after,
                ..
            } => *retry_after,
            _ => None,
        };
        let is_final = error
            .http_status()
            .is_some_and(|s| self.config.final_http_statuses.contains(&s));
        self.events.push_back(Event::ConnectFailed {
            attempt: number,
            error,
        });
        if is_final {
            return self.give_up();
        }
        let decision = self.backoff.on_attempt_failed(retry_after);
        let phase = self.schedule(decision, now);
        if let (Phase::Waiting { at }, Some(_)) = (&phase, retry_after) {
            self.not_before = Some(*at);
        }
        phase
    }

    /// Turns a backoff decision made at `now` into the next phase and its event.
    pub(super) fn schedule(&mut self, decision: Decision, now: Instant) -> Phase {
        match decision {
            Decision::RetryAfter(delay) => {
                let at = now + delay;
                self.not_before = Some(super::network::floor(
                    self.config.backoff.initial,
                    false,
                    now,
                    at,
                ));
                info!(
                    "reconnecting in {} ms (attempt {})",
                    delay.as_millis(),
                    self.attempt + 1
                );
                self.events.push_back(Event::Reconnecting {
                    attempt: self.attempt + 1,
                    delay,
                    at,
                });
                Phase::Waiting { at }
            }
            Decision::GiveUp => self.give_up(),
        }
    }

    pub(super) fn give_up(&mut self) -> Phase {
        let attempts = self.backoff.attempts_in_streak();
        warn!("giving up after {attempts} attempts");
        self.events.push_back(Event::GaveUp { attempts });
        Phase::Stopped
    }
}

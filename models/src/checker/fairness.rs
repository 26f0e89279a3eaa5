//! Fairness constraints: which actions a scheduler may not neglect forever.
//!
//! Each action has a thread and, optionally, a *class* (a set of action
//! kinds, such as "quiescent" or "process"). A class is declared weak or
//! strong, and applies to every thread separately:
//!
//! - **weak**: if thread `t` can keep taking an action of class `c` (one is
//!   enabled in every state from some point on), it eventually does;
//! - **strong**: if thread `t` can take an action of class `c` again and
//!   again (one is enabled infinitely often), it eventually does.
//!
//! Strong fairness is needed when the thread itself keeps disabling the
//! class (a thread that attaches and detaches forever can process its queue
//! only while attached, so its processing is never continuously enabled).
//!
//! A run stops only in a state with no action at all; there is no implicit
//! stuttering, so a state whose only actions are unfair still moves on.

use std::sync::Arc;

/// How a fairness class constrains the scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Strength {
    Weak,
    Strong,
}

/// A fairness class: a named set of action kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FairClass {
    pub name: &'static str,
    /// The assumption in one sentence, and why it is honest.
    pub doc: &'static str,
    /// The action kinds the class covers.
    pub kinds: &'static [&'static str],
    pub strength: Strength,
}

/// Most (thread, class) constraints one check can track.
pub const MAX_CONSTRAINTS: usize = 64;

type ThreadFn<A> = Arc<dyn Fn(&A) -> Option<usize> + Send + Sync>;
type ClassFn<A> = Arc<dyn Fn(&A) -> Option<usize> + Send + Sync>;

/// The fairness constraints of one check, over actions of type `A`.
pub struct Fairness<A> {
    classes: Vec<FairClass>,
    thread: ThreadFn<A>,
    class: ClassFn<A>,
}

impl<A> Clone for Fairness<A> {
    fn clone(&self) -> Self {
        Fairness {
            classes: self.classes.clone(),
            thread: self.thread.clone(),
            class: self.class.clone(),
        }
    }
}

impl<A: 'static> Fairness<A> {
    /// No fairness: every infinite run counts, however unfair.
    pub fn none() -> Self {
        Fairness {
            classes: Vec::new(),
            thread: Arc::new(|_| None),
            class: Arc::new(|_| None),
        }
    }

    /// Constraints given by two functions: the thread of an action and the
    /// index of its class in `classes` (`None`: the action is in no class).
    pub fn new(
        classes: Vec<FairClass>,
        thread: impl Fn(&A) -> Option<usize> + Send + Sync + 'static,
        class: impl Fn(&A) -> Option<usize> + Send + Sync + 'static,
    ) -> Self {
        Fairness {
            classes,
            thread: Arc::new(thread),
            class: Arc::new(class),
        }
    }

    /// Constraints from an action's thread and kind name: an action belongs
    /// to the first class listing its kind.
    pub fn by_kind(
        classes: &[FairClass],
        thread: fn(&A) -> usize,
        kind: fn(&A) -> &'static str,
    ) -> Self {
        let table: Vec<FairClass> = classes.to_vec();
        let lookup = table.clone();
        Fairness::new(
            table,
            move |a| Some(thread(a)),
            move |a| {
                let k = kind(a);
                lookup.iter().position(|c| c.kinds.contains(&k))
            },
        )
    }

    /// The same constraints without the class called `name`.
    pub fn without(&self, name: &str) -> Self {
        let keep: Vec<usize> = (0..self.classes.len())
            .filter(|&i| self.classes[i].name != name)
            .collect();
        let classes = keep.iter().map(|&i| self.classes[i]).collect();
        let inner = self.class.clone();
        Fairness {
            classes,
            thread: self.thread.clone(),
            class: Arc::new(move |a| inner(a).and_then(|c| keep.iter().position(|&k| k == c))),
        }
    }

    /// The same constraints with class `name` given `strength`.
    pub fn with_strength(&self, name: &str, strength: Strength) -> Self {
        let mut f = self.clone();
        for c in f.classes.iter_mut().filter(|c| c.name == name) {
            c.strength = strength;
        }
        f
    }

    /// The same classes, every one weak.
    pub fn all_weak(&self) -> Self {
        let mut f = self.clone();
        for c in f.classes.iter_mut() {
            c.strength = Strength::Weak;
        }
        f
    }
}

impl<A> Fairness<A> {
    pub fn classes(&self) -> &[FairClass] {
        &self.classes
    }

    /// The thread that takes `action`, when known.
    pub fn thread(&self, action: &A) -> Option<usize> {
        (self.thread)(action)
    }

    /// The constraint `action` serves: `thread * classes + class`, or `None`
    /// when it is in no class or has no thread. Errs when the index would
    /// exceed [`MAX_CONSTRAINTS`].
    pub fn constraint(&self, action: &A) -> Result<Option<u8>, String> {
        let (Some(c), Some(t)) = ((self.class)(action), (self.thread)(action)) else {
            return Ok(None);
        };
        let bit = t * self.classes.len() + c;
        if bit >= MAX_CONSTRAINTS {
            return Err(format!(
                "thread {t} with {} fairness classes needs constraint {bit}; at most {MAX_CONSTRAINTS} fit",
                self.classes.len()
            ));
        }
        Ok(Some(bit as u8))
    }

    /// Bits of the constraints whose class has `strength`, for every thread.
    pub fn mask(&self, strength: Strength) -> u64 {
        let n = self.classes.len();
        if n == 0 {
            return 0;
        }
        (0..MAX_CONSTRAINTS)
            .filter(|b| self.classes[b % n].strength == strength)
            .fold(0, |m, b| m | 1 << b)
    }

    /// `t3 process` for constraint bit `b`.
    pub fn describe(&self, bit: u8) -> String {
        let n = self.classes.len().max(1);
        let (t, c) = (bit as usize / n, bit as usize % n);
        match self.classes.get(c) {
            Some(class) => format!("thread {t} {}", class.name),
            None => format!("constraint {bit}"),
        }
    }
}

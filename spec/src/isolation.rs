//! Per-interpreter isolation: who allocates, interns, tracks and frees the
//! objects that subinterpreters can come to share.
//!
//! # Protocol
//! Follows CPython 3.13/3.14:
//!
//! - `Python/pylifecycle.c`: `Py_NewInterpreterFromConfig` (an interpreter
//!   is created with the legacy configuration, sharing the main
//!   interpreter's obmalloc state, or the isolated one, with its own state
//!   and `check_multi_interp_extensions`), and `Py_EndInterpreter`:
//!   `_Py_FinishPendingCalls`, then `finalize_interp_clear` →
//!   `_PyInterpreterState_Clear` (`interpreter_clear` in `Python/pystate.c`
//!   drops the modules, collects, then `_PyGC_Fini`) →
//!   `finalize_interp_types` → `_PyUnicode_ClearInterned`, then
//!   `finalize_interp_delete` → `PyInterpreterState_Delete`
//!   (`_PyInterpreterState_FinalizeAllocatedBlocks` and
//!   `free_obmalloc_arenas` in `Objects/obmalloc.c`, which keeps the arenas
//!   when blocks are still allocated).
//! - `Python/import.c`: single-phase init (`m_size == -1`). The first import
//!   runs the init function and caches a copy of the module dict
//!   (`update_global_state_for_extension`, `def->m_base.m_copy`); later
//!   imports in any interpreter copy the cached dict into their own module
//!   (`reload_singlephase_extension` / `import_find_extension`,
//!   `PyDict_Update(mdict, m_copy)`). Both paths call
//!   `_PyImport_CheckSubinterpIncompatibleExtensionAllowed`, which refuses
//!   the import in a subinterpreter with `check_multi_interp_extensions`.
//! - `Objects/unicodeobject.c`: `init_interned_dict` and
//!   `has_shared_intern_dict` (a subinterpreter that uses the main obmalloc
//!   uses the main interpreter's interned dict), `_PyUnicode_InternImmortal`,
//!   and `_PyUnicode_ClearInterned` (an interpreter with its own dict makes
//!   its immortal interned strings mortal again and frees them; one with the
//!   shared dict only forgets the pointer).
//! - `Python/gc.c`: `_PyGC_Fini` → `finalize_unlink_gc_head` (3.13/3.14:
//!   the list heads are unlinked, so objects still tracked in the dying
//!   interpreter's lists no longer point at them), and
//!   `PyObject_GC_UnTrack` / `PyObject_GC_Del` → `gc_list_remove`, which
//!   writes into the object's list neighbours.
//! - `Python/crossinterp.c`: `_PyXIData_t` holds a reference to the
//!   original object and the id of the interpreter that made it;
//!   `_PyXIData_Release` (`_xidata_release`) releases it in that
//!   interpreter, through `_Py_CallInInterpreter` (a pending call when
//!   another interpreter is current), and leaks it when the owner is gone.
//!
//! The prose version is `spec/isolation.md`.
//!
//! # Abstraction
//! Each event is one atomic step; interpreters with their own GIL run
//! concurrently in CPython, but every step here touches shared state only
//! under a lock (`extensions.mutex`, the interned dict under the main
//! interpreter's lock, `HEAD_LOCK`) or in one interpreter's own state, so
//! interleaving whole steps loses no outcome the properties depend on.
//!
//! - Interpreter 0 is the main interpreter and is never ended (runtime
//!   finalization is out of scope). Subinterpreters are created in index
//!   order, each with the legacy or the isolated configuration, and end in
//!   three steps (clear, clear interned, delete).
//! - Objects are abstract: an allocator (the main obmalloc, 0, or an
//!   isolated interpreter's own), the interpreter that made it, whether it
//!   is an immortal interned string and in which interpreter's dict, the GC
//!   list it is tracked in, and its holders. An interpreter holds at most
//!   one reference to an object; the extension cache and a cross-interpreter
//!   data item are holders of their own. A mortal object whose last holder
//!   lets go is freed by the allocator of the interpreter that is current.
//! - References from module dicts stay until their interpreter ends (the
//!   module stays in `sys.modules`); only the shared object's local
//!   reference is dropped early (`Drop`).
//! - One string value (all interned copies of it are the same value),
//!   interned on its own (`Intern`) only before any interpreter has it, one
//!   single-phase extension whose dict holds that string and one
//!   GC-tracked container, and at most one cross-interpreter data item.
//!   Receiving the item and releasing it are one step, as a channel's
//!   `recv` does (`_PyXIData_NewObject` then `_release_xid_data`); the
//!   receiver's new object is its own and is not modelled.
//! - GC lists: an object tracked in interpreter `i`'s list may be adjacent
//!   to `i`'s list head; unlinking it is a write to that head. The model
//!   treats every object of the list as adjacent (with one tracked object,
//!   as in every configuration here, this is exact). `Untrack` stands for
//!   any `PyObject_GC_UnTrack` by an interpreter using the object (a
//!   type's `tp_clear` or `tp_dealloc`); objects are never re-tracked.
//! - Omitted: mortal interned strings (3.14), statically allocated strings
//!   (`_PyRuntime.cached_objects.interned_strings`), multi-phase modules,
//!   `sys`/`builtins` copies, the free-threaded build's mimalloc heaps (the
//!   same allocator rule holds there), the GC's collections, runtime
//!   finalization, and more than one extension or string.
//!
//! There is no reference runtime for this mechanism: one would need real
//! allocators per interpreter and a real intrusive GC list to show a wrong
//! free or a write to a freed head, which is CPython itself.
//!
//! # Properties
//! See [`INVARIANTS`], [`TRANSITION_INVARIANTS`] and [`SOMETIMES`]; each
//! carries its one-sentence statement.
//!
//! # Limits
//! 2 to [`MAX_INTERPS`] interpreters (the main one included); the object
//! pool is bounded by the single string, extension and data item.

use serde::{Deserialize, Serialize};

use crate::{Invariant, Rejection, Spec, TransitionInvariant};

/// Largest number of interpreters, the main one included.
pub const MAX_INTERPS: usize = 3;
/// The main interpreter.
pub const MAIN: u8 = 0;

/// What `_PyGC_Fini` does to an ending subinterpreter's GC lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GcFini {
    /// 3.13/3.14 (gh-116510, PR 124645): `finalize_unlink_gc_head` unlinks
    /// the list heads; objects left in the list point at each other only.
    UnlinkHeads,
    /// 3.10/3.11 (bpo-46070, PR 30577): `gc_fini_untrack` untracks every
    /// object still in the lists (and leaks a reference to it).
    UntrackAll,
    /// 3.9 and the regression of gh-94673: nothing; objects still tracked
    /// keep pointers into the freed interpreter.
    Nothing,
}

/// Design switches. [`Design::CPYTHON`] is the shipped design; each other
/// setting is a broken design, and the models pin its counterexample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Design {
    /// `has_shared_intern_dict`: a subinterpreter that uses the main
    /// obmalloc interns into the main interpreter's dict. Off: every
    /// interpreter has its own dict and frees its strings when it ends.
    pub shared_intern_dict: bool,
    pub gc_fini: GcFini,
    /// `_PyXIData_Release` releases the object in the interpreter that
    /// made it. Off: the receiver drops the reference itself.
    pub xid_release_in_owner: bool,
    /// `_PyImport_CheckSubinterpIncompatibleExtensionAllowed` refuses
    /// single-phase modules in interpreters with
    /// `check_multi_interp_extensions`. Off: they import them.
    pub single_phase_check: bool,
}

impl Design {
    /// The design as CPython 3.13/3.14 ships it.
    pub const CPYTHON: Design = Design {
        shared_intern_dict: true,
        gc_fini: GcFini::UnlinkHeads,
        xid_release_in_owner: true,
        single_phase_check: true,
    };
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Interpreters, the main one included (2 to [`MAX_INTERPS`]).
    pub interps: usize,
    pub design: Design,
}

impl Config {
    /// Checks the bounds; the error names what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.interps < 2 || self.interps > MAX_INTERPS {
            return Err(format!(
                "interps must be between 2 and {MAX_INTERPS}, got {}",
                self.interps
            ));
        }
        Ok(())
    }
}

/// An interpreter's lifecycle; ending is three steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Life {
    NotCreated,
    Running,
    /// `_PyInterpreterState_Clear` done (references dropped, `_PyGC_Fini`).
    Cleared,
    /// `_PyUnicode_ClearInterned` done.
    InternedCleared,
    /// `PyInterpreterState_Delete` done: its GC heads and state are freed.
    Ended,
}

/// An interpreter's GC list head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Head {
    /// Part of a live interpreter; objects in the list may link to it.
    Live,
    /// Unlinked by `finalize_unlink_gc_head`: no object links to it.
    Unlinked,
    /// Freed while objects of its list may still link to it.
    Freed,
}

/// Where the single-phase extension stands in an interpreter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Import {
    NotYet,
    Imported,
    Refused,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Interp {
    pub life: Life,
    /// `!Py_RTFLAGS_USE_MAIN_OBMALLOC`, and with it
    /// `check_multi_interp_extensions` (the isolated configuration).
    pub own_obmalloc: bool,
    /// The interpreter whose interned dict this one uses.
    pub intern_dict: u8,
    /// Set by `_PyUnicode_ClearInterned` on an interpreter's own dict.
    pub dict_cleared: bool,
    pub gc_head: Head,
    pub import: Import,
}

impl Interp {
    /// Created and not yet cleared: it runs code and holds references.
    pub fn running(&self) -> bool {
        self.life == Life::Running
    }

    /// Created and not yet deleted.
    pub fn alive(&self) -> bool {
        !matches!(self.life, Life::NotCreated | Life::Ended)
    }
}

/// What an object is, for the counterexamples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An immortal interned string.
    Str,
    /// The GC-tracked container in the extension's module dict.
    Container,
    /// The object behind a cross-interpreter data item.
    Shared,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Object {
    pub kind: Kind,
    /// The allocator: 0 for the main obmalloc, else the isolated
    /// interpreter whose own obmalloc it came from.
    pub allocator: u8,
    /// The interpreter that made it.
    pub maker: u8,
    /// The interpreter whose interned dict holds it (strings only).
    pub interned_in: Option<u8>,
    /// The interpreter whose GC list it is tracked in.
    pub gc: Option<u8>,
    /// Interpreters holding a reference (bit `i`).
    pub holders: u8,
    /// The extension cache's `m_copy` holds it.
    pub cached: bool,
    /// A cross-interpreter data item holds it.
    pub xid: bool,
    pub freed: bool,
}

impl Object {
    fn immortal(&self) -> bool {
        self.kind == Kind::Str
    }

    fn unreferenced(&self) -> bool {
        self.holders == 0 && !self.cached && !self.xid
    }
}

/// The cross-interpreter data item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Xid {
    None,
    /// Made by `from` (it holds object `obj`), waiting for `to`.
    Sent {
        obj: u8,
        from: u8,
        to: u8,
    },
    /// Received; the release waits as a pending call in the owner.
    Pending {
        obj: u8,
        owner: u8,
    },
    /// Released (or leaked because the owner was gone).
    Done,
}

/// Sticky observations for the reachability goals.
pub mod seen {
    /// A subinterpreter's single-phase import was refused.
    pub const REFUSED: u16 = 1;
    /// An import copied the cached dict.
    pub const COPIED: u16 = 2;
    /// A release waited for its owner as a pending call.
    pub const XID_PENDING: u16 = 4;
    /// The owner freed the shared object when the release ran.
    pub const XID_FREED_BY_OWNER: u16 = 8;
    /// A release found its owner gone and leaked the reference.
    pub const XID_OWNER_GONE: u16 = 16;
    /// An isolated interpreter was deleted with blocks still allocated.
    pub const ARENAS_KEPT: u16 = 32;
    /// An object was untracked from the list of an ended interpreter.
    pub const UNTRACKED_FROM_ENDED: u16 = 64;
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct State {
    pub interps: Vec<Interp>,
    /// In creation order.
    pub objects: Vec<Object>,
    /// `_PyRuntime.imports.extensions`: the objects of the cached `m_copy`
    /// dict, once the first import has run.
    pub cache: Option<[u8; 2]>,
    pub xid: Xid,
    /// Set when an object was freed by an allocator other than its own.
    pub wrong_allocator: bool,
    /// Set when unlinking an object wrote into a freed list head.
    pub freed_node_write: bool,
    /// [`seen`] bits.
    pub seen: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum Event {
    /// `Py_NewInterpreterFromConfig` with the isolated (own obmalloc) or
    /// the legacy configuration.
    Create { interp: u8, own_obmalloc: bool },
    /// `PyUnicode_InternFromString` + `_PyUnicode_InternImmortal`: take
    /// the string from the interpreter's interned dict, or make it there.
    Intern { interp: u8 },
    /// Import the single-phase extension: refused, first (init and
    /// cache), or a copy of the cached dict.
    Import { interp: u8 },
    /// `_PyObject_GetXIData` on a new object of `from`, for `to`.
    Share { from: u8, to: u8 },
    /// `to` makes its own object from the data and releases the data.
    Receive { interp: u8 },
    /// The owner runs the pending release.
    RunPending { interp: u8 },
    /// The interpreter drops its reference to object `obj`.
    Drop { interp: u8, obj: u8 },
    /// `PyObject_GC_UnTrack` on object `obj` by an interpreter using it.
    Untrack { interp: u8, obj: u8 },
    /// `_Py_FinishPendingCalls` and `_PyInterpreterState_Clear`: pending
    /// releases run, references are dropped, `_PyGC_Fini`.
    EndClear { interp: u8 },
    /// `_PyUnicode_ClearInterned`.
    EndInterned { interp: u8 },
    /// `PyInterpreterState_Delete`: obmalloc arenas (if nothing is still
    /// allocated from them) and the GC heads are freed.
    EndDelete { interp: u8 },
}

impl Event {
    /// The interpreter that performs the event.
    pub fn interp(&self) -> u8 {
        match *self {
            Event::Create { interp, .. }
            | Event::Intern { interp }
            | Event::Import { interp }
            | Event::Receive { interp }
            | Event::RunPending { interp }
            | Event::Drop { interp, .. }
            | Event::Untrack { interp, .. }
            | Event::EndClear { interp }
            | Event::EndInterned { interp }
            | Event::EndDelete { interp } => interp,
            Event::Share { from, .. } => from,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Event::Create { .. } => "Create",
            Event::Intern { .. } => "Intern",
            Event::Import { .. } => "Import",
            Event::Share { .. } => "Share",
            Event::Receive { .. } => "Receive",
            Event::RunPending { .. } => "RunPending",
            Event::Drop { .. } => "Drop",
            Event::Untrack { .. } => "Untrack",
            Event::EndClear { .. } => "EndClear",
            Event::EndInterned { .. } => "EndInterned",
            Event::EndDelete { .. } => "EndDelete",
        }
    }
}

/// Every event kind, in declaration order.
pub const EVENT_KINDS: &[&str] = &[
    "Create",
    "Intern",
    "Import",
    "Share",
    "Receive",
    "RunPending",
    "Drop",
    "Untrack",
    "EndClear",
    "EndInterned",
    "EndDelete",
];

impl State {
    /// The allocator `PyObject_Malloc` / `PyObject_Free` use while `i` is
    /// current (`_PyInterpreterState_GET()->obmalloc`).
    pub fn allocator_of(&self, i: u8) -> u8 {
        if self.interps[i as usize].own_obmalloc {
            i
        } else {
            MAIN
        }
    }

    fn holds(&self, i: u8, o: usize) -> bool {
        self.objects[o].holders & (1 << i) != 0
    }

    /// Interpreters still running (bit `i`).
    pub fn running_mask(&self) -> u8 {
        self.interps
            .iter()
            .enumerate()
            .filter(|(_, x)| x.running())
            .fold(0, |m, (i, _)| m | (1 << i))
    }

    fn new_object(&mut self, kind: Kind, maker: u8) -> usize {
        let allocator = self.allocator_of(maker);
        self.objects.push(Object {
            kind,
            allocator,
            maker,
            interned_in: None,
            gc: None,
            holders: 1 << maker,
            cached: false,
            xid: false,
            freed: false,
        });
        self.objects.len() - 1
    }

    /// `gc_list_remove`: unlinking writes into the list neighbours, which
    /// include the head of the list the object is in.
    fn untrack(&mut self, o: usize) {
        if let Some(list) = self.objects[o].gc.take() {
            match self.interps[list as usize].gc_head {
                Head::Freed => self.freed_node_write = true,
                Head::Unlinked => self.seen |= seen::UNTRACKED_FROM_ENDED,
                Head::Live => {}
            }
        }
    }

    /// Deallocation while `current` is the current interpreter:
    /// `PyObject_GC_Del` untracks, then `PyObject_Free` returns the block
    /// to the current interpreter's allocator.
    fn free(&mut self, o: usize, current: u8) {
        self.untrack(o);
        if self.objects[o].allocator != self.allocator_of(current) {
            self.wrong_allocator = true;
        }
        let obj = &mut self.objects[o];
        obj.interned_in = None;
        obj.freed = true;
    }

    /// After a holder let go while `current` is current: a mortal object
    /// that nothing holds any more is deallocated.
    fn release(&mut self, o: usize, current: u8) {
        let obj = &self.objects[o];
        if !obj.freed && !obj.immortal() && obj.unreferenced() {
            self.free(o, current);
        }
    }

    /// `PyUnicode_InternFromString` in `i`: the string of its interned
    /// dict, made there (immortal) when the dict lacks it.
    fn intern(&mut self, i: u8) -> usize {
        let dict = self.interps[i as usize].intern_dict;
        if let Some(o) = self
            .objects
            .iter()
            .position(|x| x.interned_in == Some(dict) && !x.freed)
        {
            self.objects[o].holders |= 1 << i;
            return o;
        }
        let o = self.new_object(Kind::Str, i);
        self.objects[o].interned_in = Some(dict);
        o
    }

    fn import_refused(&self, cfg: &Config, i: u8) -> bool {
        i != MAIN && cfg.design.single_phase_check && self.interps[i as usize].own_obmalloc
    }
}

pub struct Isolation;

fn reject<T>(reason: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(reason))
}

impl Spec for Isolation {
    type Config = Config;
    type State = State;
    type Event = Event;
    const NAME: &'static str = "isolation";

    fn init(cfg: &Config) -> State {
        let mut interps = vec![
            Interp {
                life: Life::NotCreated,
                own_obmalloc: false,
                intern_dict: MAIN,
                dict_cleared: false,
                gc_head: Head::Live,
                import: Import::NotYet,
            };
            cfg.interps
        ];
        interps[MAIN as usize].life = Life::Running;
        State {
            interps,
            objects: Vec::new(),
            cache: None,
            xid: Xid::None,
            wrong_allocator: false,
            freed_node_write: false,
            seen: 0,
        }
    }

    fn enabled(_cfg: &Config, s: &State, out: &mut Vec<Event>) {
        let n = s.interps.len() as u8;
        for i in 0..n {
            let x = &s.interps[i as usize];
            match x.life {
                Life::NotCreated => {
                    if s.interps[i as usize - 1].life != Life::NotCreated {
                        for own_obmalloc in [false, true] {
                            out.push(Event::Create {
                                interp: i,
                                own_obmalloc,
                            });
                        }
                    }
                    continue;
                }
                Life::Cleared => {
                    out.push(Event::EndInterned { interp: i });
                    continue;
                }
                Life::InternedCleared => {
                    out.push(Event::EndDelete { interp: i });
                    continue;
                }
                Life::Ended => continue,
                Life::Running => {}
            }
            if s.objects.iter().all(|o| o.kind != Kind::Str) {
                out.push(Event::Intern { interp: i });
            }
            if x.import == Import::NotYet {
                out.push(Event::Import { interp: i });
            }
            if s.xid == Xid::None {
                for to in 0..n {
                    if to != i && s.interps[to as usize].running() {
                        out.push(Event::Share { from: i, to });
                    }
                }
            }
            if let Xid::Sent { to, .. } = s.xid
                && to == i
            {
                out.push(Event::Receive { interp: i });
            }
            if let Xid::Pending { owner, .. } = s.xid
                && owner == i
            {
                out.push(Event::RunPending { interp: i });
            }
            for o in 0..s.objects.len() {
                if s.holds(i, o) {
                    if s.objects[o].kind == Kind::Shared {
                        out.push(Event::Drop {
                            interp: i,
                            obj: o as u8,
                        });
                    }
                    if s.objects[o].gc.is_some() {
                        out.push(Event::Untrack {
                            interp: i,
                            obj: o as u8,
                        });
                    }
                }
            }
            if i != MAIN {
                out.push(Event::EndClear { interp: i });
            }
        }
    }

    fn step(cfg: &Config, s: &State, event: &Event) -> Result<State, Rejection> {
        let i = event.interp();
        if i as usize >= s.interps.len() {
            return reject(format!(
                "no interpreter {i} in a {}-interpreter configuration",
                s.interps.len()
            ));
        }
        let me = s.interps[i as usize];
        let mut n = s.clone();
        match *event {
            Event::Create { own_obmalloc, .. } => {
                if me.life != Life::NotCreated
                    || i == MAIN
                    || s.interps[i as usize - 1].life == Life::NotCreated
                {
                    return reject("interpreters are created once, in index order");
                }
                let x = &mut n.interps[i as usize];
                x.life = Life::Running;
                x.own_obmalloc = own_obmalloc;
                // init_interned_dict: has_shared_intern_dict.
                x.intern_dict = if cfg.design.shared_intern_dict && !own_obmalloc {
                    MAIN
                } else {
                    i
                };
            }
            Event::Intern { .. } => {
                if !me.running() || s.objects.iter().any(|o| o.kind == Kind::Str) {
                    return reject("a running interpreter interns the string before anyone has");
                }
                n.intern(i);
            }
            Event::Import { .. } => {
                if !me.running() || me.import != Import::NotYet {
                    return reject("a running interpreter imports the extension once");
                }
                if s.import_refused(cfg, i) {
                    n.interps[i as usize].import = Import::Refused;
                    n.seen |= seen::REFUSED;
                    return Ok(n);
                }
                match s.cache {
                    None => {
                        // The init function builds the module dict; the
                        // first import caches a copy of it (m_copy).
                        let string = n.intern(i);
                        let container = n.new_object(Kind::Container, i);
                        n.objects[container].gc = Some(i);
                        for o in [string, container] {
                            n.objects[o].cached = true;
                        }
                        n.cache = Some([string as u8, container as u8]);
                    }
                    Some(objs) => {
                        for o in objs {
                            n.objects[o as usize].holders |= 1 << i;
                        }
                        n.seen |= seen::COPIED;
                    }
                }
                n.interps[i as usize].import = Import::Imported;
            }
            Event::Share { from, to } => {
                if s.xid != Xid::None
                    || from == to
                    || !me.running()
                    || to as usize >= s.interps.len()
                    || !s.interps[to as usize].running()
                {
                    return reject("one data item, between two running interpreters");
                }
                let obj = n.new_object(Kind::Shared, from);
                n.objects[obj].xid = true;
                n.xid = Xid::Sent {
                    obj: obj as u8,
                    from,
                    to,
                };
            }
            Event::Receive { .. } => {
                let Xid::Sent { obj, from, to } = s.xid else {
                    return reject("no data item in flight");
                };
                if to != i || !me.running() {
                    return reject("the addressee receives, while running");
                }
                let o = obj as usize;
                if !cfg.design.xid_release_in_owner {
                    n.objects[o].xid = false;
                    n.release(o, i);
                    n.xid = Xid::Done;
                } else if s.interps[from as usize].running() {
                    // _Py_CallInInterpreter: a pending call in the owner.
                    n.xid = Xid::Pending { obj, owner: from };
                    n.seen |= seen::XID_PENDING;
                } else {
                    // The owner is gone (or past its pending calls): the
                    // reference is leaked.
                    n.xid = Xid::Done;
                    n.seen |= seen::XID_OWNER_GONE;
                }
            }
            Event::RunPending { .. } => {
                let Xid::Pending { obj, owner } = s.xid else {
                    return reject("no pending release");
                };
                if owner != i || !me.running() {
                    return reject("the owner runs its pending release");
                }
                n.run_pending(obj as usize, i);
            }
            Event::Drop { obj, .. } | Event::Untrack { obj, .. } => {
                let o = obj as usize;
                if !me.running() || o >= s.objects.len() || !s.holds(i, o) {
                    return reject("a running interpreter acts on an object it holds");
                }
                if let Event::Drop { .. } = event {
                    // Module-dict references stay until the interpreter
                    // ends (the module stays in sys.modules).
                    if s.objects[o].kind != Kind::Shared {
                        return reject("only the shared object's local reference is dropped");
                    }
                    n.objects[o].holders &= !(1 << i);
                    n.release(o, i);
                } else {
                    if s.objects[o].gc.is_none() {
                        return reject("the object is not tracked");
                    }
                    n.untrack(o);
                }
            }
            Event::EndClear { .. } => {
                if i == MAIN || !me.running() {
                    return reject("a running subinterpreter ends");
                }
                // _Py_FinishPendingCalls.
                if let Xid::Pending { obj, owner } = s.xid
                    && owner == i
                {
                    n.run_pending(obj as usize, i);
                }
                // interpreter_clear: modules and the rest are dropped.
                for o in 0..n.objects.len() {
                    if n.holds(i, o) {
                        n.objects[o].holders &= !(1 << i);
                        n.release(o, i);
                    }
                }
                // _PyGC_Fini.
                match cfg.design.gc_fini {
                    GcFini::UnlinkHeads => n.interps[i as usize].gc_head = Head::Unlinked,
                    GcFini::UntrackAll => {
                        for o in 0..n.objects.len() {
                            if n.objects[o].gc == Some(i) {
                                n.untrack(o);
                            }
                        }
                    }
                    GcFini::Nothing => {}
                }
                n.interps[i as usize].life = Life::Cleared;
            }
            Event::EndInterned { .. } => {
                if me.life != Life::Cleared {
                    return reject("interned strings are cleared after the interpreter state");
                }
                // _PyUnicode_ClearInterned: a shared dict is only
                // forgotten; an own dict's immortal strings are made
                // mortal and freed with it, whoever still holds them.
                if me.intern_dict == i {
                    for o in 0..n.objects.len() {
                        if n.objects[o].interned_in == Some(i) {
                            n.free(o, i);
                        }
                    }
                    n.interps[i as usize].dict_cleared = true;
                }
                n.interps[i as usize].life = Life::InternedCleared;
            }
            Event::EndDelete { .. } => {
                if me.life != Life::InternedCleared {
                    return reject("the interpreter is deleted after its interned strings");
                }
                // _PyInterpreterState_FinalizeAllocatedBlocks: arenas with
                // live blocks are kept (leaked) rather than freed.
                if me.own_obmalloc && s.objects.iter().any(|o| o.allocator == i && !o.freed) {
                    n.seen |= seen::ARENAS_KEPT;
                }
                let x = &mut n.interps[i as usize];
                if x.gc_head == Head::Live {
                    x.gc_head = Head::Freed;
                }
                x.life = Life::Ended;
            }
        }
        Ok(n)
    }

    fn actor(event: &Event) -> usize {
        event.interp() as usize
    }

    fn invariants() -> &'static [Invariant<State>] {
        INVARIANTS
    }

    fn transition_invariants() -> &'static [TransitionInvariant<State>] {
        TRANSITION_INVARIANTS
    }

    fn sometimes() -> &'static [Invariant<State>] {
        SOMETIMES
    }
}

impl State {
    /// `_call_clear_xidata` in the owner: the data's reference goes.
    fn run_pending(&mut self, o: usize, owner: u8) {
        self.objects[o].xid = false;
        self.release(o, owner);
        if self.objects[o].freed {
            self.seen |= seen::XID_FREED_BY_OWNER;
        }
        self.xid = Xid::Done;
    }
}

/// Reachability goals, in name order (manifests list unreached goals
/// sorted).
pub static SOMETIMES: &[Invariant<State>] = &[
    Invariant {
        name: "extension_copied",
        doc: "Some interpreter imports the single-phase extension from the cached copy of its dict.",
        holds: |s| s.seen & seen::COPIED != 0,
    },
    Invariant {
        name: "gc_object_outlives_its_list",
        doc: "Some object is untracked after the interpreter whose GC list it was in has ended.",
        holds: |s| s.seen & seen::UNTRACKED_FROM_ENDED != 0,
    },
    Invariant {
        name: "import_refused",
        doc: "Some isolated subinterpreter is refused the single-phase extension.",
        holds: |s| s.seen & seen::REFUSED != 0,
    },
    Invariant {
        name: "isolated_arenas_kept",
        doc: "Some isolated interpreter is deleted while blocks of its allocator are still in use, so its arenas are kept.",
        holds: |s| s.seen & seen::ARENAS_KEPT != 0,
    },
    Invariant {
        name: "string_outlives_its_interner",
        doc: "Some running interpreter holds an interned string made by a subinterpreter that has ended.",
        holds: |s| {
            let running = s.running_mask();
            s.objects.iter().any(|o| {
                o.kind == Kind::Str
                    && !o.freed
                    && o.holders & running != 0
                    && s.interps[o.maker as usize].life == Life::Ended
            })
        },
    },
    Invariant {
        name: "xid_freed_by_owner",
        doc: "Some shared object is freed by its owner when a pending release runs there.",
        holds: |s| s.seen & seen::XID_FREED_BY_OWNER != 0,
    },
    Invariant {
        name: "xid_owner_gone",
        doc: "Some cross-interpreter data item is received after its owner has ended, and its reference is leaked.",
        holds: |s| s.seen & seen::XID_OWNER_GONE != 0,
    },
    Invariant {
        name: "xid_release_pending",
        doc: "Some release of cross-interpreter data waits as a pending call in its owner.",
        holds: |s| s.seen & seen::XID_PENDING != 0,
    },
];

/// Named state invariants.
pub static INVARIANTS: &[Invariant<State>] = &[
    Invariant {
        name: "no_use_after_free",
        doc: "No running interpreter holds a reference to a freed object.",
        holds: |s| {
            let running = s.running_mask();
            s.objects
                .iter()
                .all(|o| !o.freed || o.holders & running == 0)
        },
    },
    Invariant {
        name: "extension_cache_valid",
        doc: "Every object in the cached m_copy dict of the single-phase extension is alive.",
        holds: |s| s.objects.iter().all(|o| !o.cached || !o.freed),
    },
    Invariant {
        name: "freed_by_owning_allocator",
        doc: "No object is ever freed by an allocator other than the one that allocated it.",
        holds: |s| !s.wrong_allocator,
    },
    Invariant {
        name: "no_write_to_freed_gc_node",
        doc: "No object is ever unlinked from a GC list whose freed head it still points at.",
        holds: |s| !s.freed_node_write,
    },
    Invariant {
        name: "isolated_heap_not_shared",
        doc: "No object of an isolated interpreter's own allocator is held by another interpreter or by the extension cache.",
        holds: |s| {
            s.objects.iter().all(|o| {
                o.allocator == MAIN
                    || o.freed
                    || (!o.cached && o.holders & !(1u8 << o.allocator) == 0)
            })
        },
    },
    Invariant {
        name: "interned_strings_outlive_users",
        doc: "Every interned string a running interpreter or the extension cache holds is still in an interned dict that has not been cleared.",
        holds: |s| {
            let running = s.running_mask();
            s.objects.iter().all(|o| {
                o.kind != Kind::Str
                    || (o.holders & running == 0 && !o.cached)
                    || o.interned_in
                        .is_some_and(|d| !s.interps[d as usize].dict_cleared)
            })
        },
    },
];

/// Named transition invariants: none. The wrong free and the freed-node
/// write are sticky flags, so a twin is explored on past them.
pub static TRANSITION_INVARIANTS: &[TransitionInvariant<State>] = &[];

#[cfg(test)]
mod tests;

//! Readable counterexamples from any `Debug` state: the pretty (`{:#?}`)
//! output is parsed back into a tree, and two consecutive states are
//! compared field by field, so a step prints only what it changed
//! (`threads[1].life: New -> Reserved(0)`).
//!
//! The parser reads what `#[derive(Debug)]` writes in pretty mode: one
//! value per line, openers (`Name {`, `[`, `Name(`) at line ends, closers
//! on their own line, a comma after every element. Hand-written `Debug`
//! impls that print differently still render: whatever does not parse as
//! a nested value is kept as an opaque leaf, and a changed leaf prints
//! whole.

/// A parsed `Debug` value.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    /// A value printed on one line (`3`, `None`, `[]`, `"text"`).
    Leaf(String),
    /// A nested value: `head` is the type or variant name (empty for
    /// lists and maps), `open` one of `{`, `[`, `(`.
    Group {
        head: String,
        open: char,
        items: Vec<(Option<String>, Node)>,
    },
}

fn closer(open: char) -> char {
    match open {
        '{' => '}',
        '[' => ']',
        _ => ')',
    }
}

/// Splits `key: rest` when `key` looks like a field name or a map key
/// that is a plain word or number; string values and nested values never
/// start that way.
fn split_key(line: &str) -> (Option<&str>, &str) {
    if let Some((key, rest)) = line.split_once(": ") {
        let plain = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if plain {
            return (Some(key), rest);
        }
    }
    (None, line)
}

fn parse(pretty: &str) -> Node {
    // Each frame is a group under construction plus the key it will be
    // stored under in its parent.
    let mut stack: Vec<(Option<String>, Node)> = Vec::new();
    let mut root: Option<Node> = None;
    for raw in pretty.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let body = line.strip_suffix(',').unwrap_or(line);
        let closes = matches!(body, "}" | "]" | ")");
        if closes && !stack.is_empty() {
            let (key, node) = stack.pop().expect("checked non-empty");
            match stack.last_mut() {
                Some((_, Node::Group { items, .. })) => items.push((key, node)),
                _ => root = Some(node),
            }
            continue;
        }
        let (key, rest) = split_key(body);
        let key = key.map(str::to_string);
        let opener = rest.chars().last().filter(|c| matches!(c, '{' | '[' | '('));
        match opener {
            Some(open) => {
                let head = rest[..rest.len() - 1].trim_end().to_string();
                stack.push((
                    key,
                    Node::Group {
                        head,
                        open,
                        items: Vec::new(),
                    },
                ));
            }
            None => {
                let leaf = Node::Leaf(rest.to_string());
                match stack.last_mut() {
                    Some((_, Node::Group { items, .. })) => items.push((key, leaf)),
                    _ => root = Some(leaf),
                }
            }
        }
    }
    // Unbalanced input (not derive-style Debug): fold what is open.
    while let Some((key, node)) = stack.pop() {
        match stack.last_mut() {
            Some((_, Node::Group { items, .. })) => items.push((key, node)),
            _ => root = Some(node),
        }
    }
    root.unwrap_or_else(|| Node::Leaf(pretty.trim().to_string()))
}

/// The one-line rendering, in the shape of compact `{:?}` output.
fn compact(node: &Node) -> String {
    match node {
        Node::Leaf(s) => s.clone(),
        Node::Group { head, open, items } => {
            let inner: Vec<String> = items
                .iter()
                .map(|(k, v)| match k {
                    Some(k) => format!("{k}: {}", compact(v)),
                    None => compact(v),
                })
                .collect();
            let close = closer(*open);
            match open {
                '{' if head.is_empty() => format!("{{{}}}", inner.join(", ")),
                '{' => format!("{head} {{ {} }}", inner.join(", ")),
                _ => format!("{head}{open}{}{close}", inner.join(", ")),
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn diff_into(path: &str, a: &Node, b: &Node, out: &mut Vec<String>) {
    if a == b {
        return;
    }
    let whole = |out: &mut Vec<String>| {
        let name = if path.is_empty() { "state" } else { path };
        out.push(format!("{name}: {} -> {}", compact(a), compact(b)));
    };
    let (
        Node::Group {
            head: ha,
            open: oa,
            items: ia,
        },
        Node::Group {
            head: hb,
            open: ob,
            items: ib,
        },
    ) = (a, b)
    else {
        return whole(out);
    };
    if ha != hb || oa != ob {
        return whole(out);
    }
    match oa {
        // A struct (same type or variant): compare field by field.
        '{' if ia.len() == ib.len() && ia.iter().zip(ib).all(|(x, y)| x.0 == y.0) => {
            for ((k, x), (_, y)) in ia.iter().zip(ib) {
                let key = k.as_deref().unwrap_or("?");
                diff_into(&join(path, key), x, y, out);
            }
        }
        // A list: element by element when only the elements changed, a
        // push or a pop at the end as such, anything else whole.
        '[' => {
            let common = ia.len().min(ib.len());
            let prefix_same = ia[..common] == ib[..common];
            if ia.len() == ib.len() {
                for (i, ((_, x), (_, y))) in ia.iter().zip(ib).enumerate() {
                    diff_into(&format!("{path}[{i}]"), x, y, out);
                }
            } else if prefix_same {
                for (i, (_, v)) in ib.iter().enumerate().skip(common) {
                    out.push(format!("{path}[{i}]: added {}", compact(v)));
                }
                for (i, (_, v)) in ia.iter().enumerate().skip(common) {
                    out.push(format!("{path}[{i}]: removed {}", compact(v)));
                }
            } else {
                whole(out);
            }
        }
        _ => whole(out),
    }
}

/// The changes from one state to the next, one line per changed field,
/// given their pretty (`{:#?}`) `Debug` renderings.
pub fn diff(before: &str, after: &str) -> Vec<String> {
    let mut out = Vec::new();
    diff_into("", &parse(before), &parse(after), &mut out);
    out
}

/// A value's one-line rendering from its pretty `Debug` output.
pub fn one_line(pretty: &str) -> String {
    compact(&parse(pretty))
}

/// An event's label without the field that names its thread (the step
/// already says which thread takes it): `Replace { new: 1, goal: 3 }`.
pub fn event_label(pretty: &str, thread_field: &str) -> String {
    match parse(pretty) {
        Node::Group {
            head,
            open: '{',
            mut items,
        } => {
            items.retain(|(k, _)| k.as_deref() != Some(thread_field));
            if items.is_empty() {
                head
            } else {
                compact(&Node::Group {
                    head,
                    open: '{',
                    items,
                })
            }
        }
        other => compact(&other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone)]
    #[allow(dead_code)]
    enum Life {
        New,
        Reserved(u8),
        Exiting { stale: Option<Slot> },
    }

    #[derive(Debug, Clone, Copy)]
    #[allow(dead_code)]
    struct Slot {
        generation: u8,
        index: u8,
    }

    #[derive(Debug, Clone)]
    #[allow(dead_code)]
    struct Thread {
        life: Life,
        queue: Vec<u8>,
        name: &'static str,
    }

    #[derive(Debug, Clone)]
    #[allow(dead_code)]
    struct State {
        seq: u32,
        threads: Vec<Thread>,
    }

    fn pretty<T: std::fmt::Debug>(v: &T) -> String {
        format!("{v:#?}")
    }

    fn state() -> State {
        State {
            seq: 1,
            threads: vec![
                Thread {
                    life: Life::New,
                    queue: vec![],
                    name: "a: {b",
                },
                Thread {
                    life: Life::Reserved(0),
                    queue: vec![4, 5],
                    name: "c",
                },
            ],
        }
    }

    #[test]
    fn one_line_matches_compact_debug() {
        let s = state();
        assert_eq!(one_line(&pretty(&s)), format!("{s:?}"));
        let e = Life::Exiting {
            stale: Some(Slot {
                generation: 1,
                index: 2,
            }),
        };
        assert_eq!(one_line(&pretty(&e)), format!("{e:?}"));
    }

    #[test]
    fn diff_names_each_changed_field() {
        let a = state();
        let mut b = a.clone();
        b.seq = 3;
        b.threads[0].life = Life::Reserved(1);
        b.threads[1].queue.remove(0);
        b.threads[0].queue.push(9);
        assert_eq!(
            diff(&pretty(&a), &pretty(&b)),
            vec![
                "seq: 1 -> 3",
                "threads[0].life: New -> Reserved(1)",
                "threads[0].queue: [] -> [9]",
                "threads[1].queue: [4, 5] -> [5]",
            ]
        );
        let mut c = b.clone();
        c.threads[1].queue.push(6);
        c.threads[1].life = Life::Exiting { stale: None };
        assert_eq!(
            diff(&pretty(&b), &pretty(&c)),
            vec![
                "threads[1].life: Reserved(0) -> Exiting { stale: None }",
                "threads[1].queue[1]: added 6",
            ]
        );
        assert!(diff(&pretty(&a), &pretty(&a)).is_empty());
    }

    #[test]
    fn event_label_drops_the_thread_field() {
        #[derive(Debug)]
        #[allow(dead_code)]
        enum Event {
            Replace { thread: u8, new: u8, goal: u32 },
            Register { thread: u8 },
        }
        let r = Event::Replace {
            thread: 1,
            new: 2,
            goal: 3,
        };
        assert_eq!(
            event_label(&pretty(&r), "thread"),
            "Replace { new: 2, goal: 3 }"
        );
        assert_eq!(
            event_label(&pretty(&Event::Register { thread: 0 }), "thread"),
            "Register"
        );
    }
}

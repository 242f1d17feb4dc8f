"""Every rule devkit checks: one row each, the single source for messages' names and `explain`."""

from __future__ import annotations

from devkit.record import Record
from devkit.violations import ERROR, Location, Violation


class Rule(Record):
    code: str
    name: str
    kind: str  # "commit" | "branch" | "news"
    summary: str
    why: str
    bad: str  # commit: a message; branch: a name; news: "FILENAME\nCONTENT"
    good: str
    options: tuple[str, ...] = ()  # config keys that tune the rule
    since: str = "0.1.0"


RULES: tuple[Rule, ...] = (
    Rule(
        "CM001",
        "message-empty",
        "commit",
        "The commit message is empty once git's comments are removed.",
        "git aborts an empty commit; a commit-msg hook sees it when the editor was left blank.",
        "",
        "fix: handle the empty case",
    ),
    Rule(
        "CM002",
        "header-format",
        "commit",
        "The header is `<type>[(scope)][!]: <description>`.",
        "Conventional Commits 1.0.0 rules 1 and 5: a type, an optional scope, an optional `!`, a colon, "
        "one space, then the description. Tools that build changelogs and versions parse exactly this.",
        "Fixed the login bug",
        "fix: correct the login bug",
    ),
    Rule(
        "CM003",
        "type-enum",
        "commit",
        "The type is one of the project's allowed types.",
        "A fixed list keeps changelog sections and release tooling predictable.",
        "feet: add search",
        "feat: add search",
        ("commit.types",),
    ),
    Rule(
        "CM004",
        "type-case",
        "commit",
        "The type is written in lower case.",
        "The spec treats types case-insensitively, but a project may want one spelling in its history.",
        "Feat: add search",
        "feat: add search",
        ("commit.type_case",),
    ),
    Rule(
        "CM005",
        "scope-enum",
        "commit",
        "The scope is one of the project's allowed scopes.",
        "Scopes name parts of the codebase; a list or pattern keeps them consistent.",
        "fix(BA-12 3): handle timeouts",
        "fix(BA-123): handle timeouts",
        ("commit.scopes", "commit.scope_delimiter"),
    ),
    Rule(
        "CM006",
        "scope-required",
        "commit",
        "The header has a scope.",
        "Some projects require every commit to name the component or ticket it touches.",
        "fix: handle timeouts",
        "fix(api): handle timeouts",
        ("commit.scope_required",),
    ),
    Rule(
        "CM007",
        "scope-empty",
        "commit",
        "A scope in parentheses is not empty.",
        "`fix(): x` carries no information and most parsers reject it.",
        "fix(): handle timeouts",
        "fix: handle timeouts",
    ),
    Rule(
        "CM008",
        "breaking-marker",
        "commit",
        "The `!` breaking-change marker is not used.",
        "Some projects (Backend.AI's pr-prefix check) reject `type!:`; they record breaking changes elsewhere.",
        "feat!: drop the v1 API",
        "feat: drop the v1 API",
        ("commit.allow_breaking_marker",),
    ),
    Rule(
        "CM009",
        "header-max-length",
        "commit",
        "The header is at most `header_max_length` characters.",
        "Long headers are cut off by `git log --oneline`, GitHub and most UIs.",
        "feat: " + "add a very long description " * 4,
        "feat: add a short description",
        ("commit.header_max_length",),
    ),
    Rule(
        "CM010",
        "subject-case",
        "commit",
        "The description starts with the configured case.",
        "One spelling reads better in a changelog. Acronyms and names (API, GraphQL, iOS) are always allowed.",
        "feat: Add search",
        "feat: add search",
        ("commit.subject_case",),
    ),
    Rule(
        "CM011",
        "subject-full-stop",
        "commit",
        "The description does not end with a full stop.",
        "A header is a title, not a sentence.",
        "feat: add search.",
        "feat: add search",
        ("commit.subject_full_stop",),
    ),
    Rule(
        "CM012",
        "body-leading-blank",
        "commit",
        "A blank line separates the header from the body.",
        "Conventional Commits rule 6; git itself treats everything up to the first blank line as the subject.",
        "fix: handle timeouts\nRetry once before failing.",
        "fix: handle timeouts\n\nRetry once before failing.",
    ),
    Rule(
        "CM013",
        "footer-leading-blank",
        "commit",
        "A blank line separates the body from the footers.",
        "Conventional Commits rule 8: without it the footers are read as body text and tools miss them.",
        "fix: handle timeouts\n\nRetry once before failing.\nRefs: #123",
        "fix: handle timeouts\n\nRetry once before failing.\n\nRefs: #123",
    ),
    Rule(
        "CM014",
        "breaking-change-token",
        "commit",
        "The breaking-change footer is written `BREAKING CHANGE:` or `BREAKING-CHANGE:`.",
        "Conventional Commits rules 12, 15 and 16: it is the one case-sensitive token, followed by `: `.",
        "feat: drop v1\n\nBreaking change: the v1 API is gone",
        "feat: drop v1\n\nBREAKING CHANGE: the v1 API is gone",
    ),
    Rule(
        "CM015",
        "breaking-change-empty",
        "commit",
        "A `BREAKING CHANGE:` footer has a description.",
        "Conventional Commits rule 12: the token is followed by a description of the break.",
        "feat: drop v1\n\nBREAKING CHANGE:",
        "feat: drop v1\n\nBREAKING CHANGE: the v1 API is gone",
    ),
    Rule(
        "CM016",
        "footer-token-format",
        "commit",
        "A footer token uses `-` instead of spaces.",
        "Conventional Commits rule 9: `Reviewed-by`, not `Reviewed by` (only `BREAKING CHANGE` may contain a space).",
        "fix: handle timeouts\n\nRefs: #12\nReviewed by: Ann",
        "fix: handle timeouts\n\nRefs: #12\nReviewed-by: Ann",
    ),
    Rule(
        "CM017",
        "body-max-line-length",
        "commit",
        "Body lines are at most `body_max_line_length` characters.",
        "Wrapped bodies read well in terminals. Lines with a URL and footer lines are exempt, and so are bot commits.",
        "fix: x\n\n" + "word " * 30,
        "fix: x\n\nshort lines",
        ("commit.body_max_line_length",),
    ),
    Rule(
        "CM018",
        "trailer-required",
        "commit",
        "The message carries every required trailer.",
        "Projects that need a DCO sign-off or a ticket reference on every commit.",
        "fix: x",
        "fix: x\n\nSigned-off-by: Ann <ann@example.com>",
        ("commit.required_trailers",),
    ),
    Rule(
        "CM019",
        "trailer-forbidden",
        "commit",
        "The message carries no forbidden trailer.",
        "Keep tool-specific trailers (e.g. Gerrit's Change-Id) out of a project's history.",
        "fix: x\n\nChange-Id: I123",
        "fix: x",
        ("commit.forbidden_trailers",),
    ),
    Rule(
        "CM020",
        "merge-commit",
        "commit",
        "The range contains no merge commit.",
        "Projects with a linear history rebase instead of merging the base branch in.",
        "Merge branch 'main' into feat/x",
        "feat: x",
        ("commit.allow_merge_commits",),
    ),
    Rule(
        "CM021",
        "revert-commit",
        "commit",
        "The range contains no git-generated revert commit.",
        "Projects that want reverts written as `revert: ...` Conventional Commits.",
        'Revert "feat: x"\n\nThis reverts commit 0123456789abcdef0123456789abcdef01234567.',
        "revert: feat: x\n\nRefs: 0123456",
        ("commit.allow_revert_commits",),
    ),
    Rule(
        "CM022",
        "fixup-commit",
        "commit",
        "The range contains no `fixup!`, `squash!` or `amend!` commit.",
        "Such commits are meant to be squashed with `git rebase --autosquash` before a merge.",
        "fixup! feat: x",
        "feat: x",
        ("commit.allow_fixup_commits",),
    ),
    Rule(
        "CM023",
        "message-encoding",
        "commit",
        "The message file is valid UTF-8.",
        "git stores messages as UTF-8 unless i18n.commitEncoding says otherwise; other bytes garble logs.",
        "",
        "fix: x",
    ),
    Rule(
        "BR001",
        "branch-pattern",
        "branch",
        "The branch name matches one of the configured forms.",
        "Names like `feat/login-form` say what a branch is for and let tools find the ticket.",
        "Login_Form",
        "feat/login-form",
        ("branch.patterns", "branch.forms", "branch.exempt"),
    ),
    Rule(
        "BR002",
        "branch-type-enum",
        "branch",
        "The branch's `<type>/` prefix is an allowed type.",
        "The prefix says what kind of change the branch carries, the same vocabulary as commit types.",
        "feet/login-form",
        "feat/login-form",
        ("branch.types",),
    ),
    Rule(
        "NF001",
        "fragment-name",
        "news",
        "A fragment is named `<number>.<type>.<ext>` (towncrier's naming).",
        "towncrier silently drops or misfiles fragments with other names (it only errors under `check`).",
        "fix-123.md\nFix the login form",
        "123.fix.md\nFix the login form",
    ),
    Rule(
        "NF002",
        "fragment-type",
        "news",
        "The fragment's type is one of the towncrier config's types.",
        "An unknown type never reaches the changelog.",
        "123.bugfix.md\nFix the login form",
        "123.fix.md\nFix the login form",
    ),
    Rule(
        "NF003",
        "fragment-placeholder",
        "news",
        "A fragment has a number, not a placeholder name such as `fix.md`.",
        "Placeholder names are fine while the pull request has no number; `devkit news assign N` renames them.",
        "fix.md\nFix the login form",
        "123.fix.md\nFix the login form",
        ("news.allow_placeholders",),
    ),
    Rule(
        "NF004",
        "fragment-empty",
        "news",
        "A fragment has text.",
        "towncrier renders an empty fragment as a bare bullet.",
        "123.fix.md\n",
        "123.fix.md\nFix the login form",
    ),
    Rule(
        "NF005",
        "fragment-template-text",
        "news",
        "A fragment does not keep towncrier's `Add your info here` text.",
        "`towncrier create` writes it as a placeholder; it passes `towncrier check` and ends up in the changelog.",
        "123.fix.md\nAdd your info here",
        "123.fix.md\nFix the login form",
    ),
    Rule(
        "NF006",
        "fragment-single-line",
        "news",
        "A fragment is one line with one sentence.",
        "Backend.AI's rule: details belong in the commit message and the pull request, not the changelog.",
        "123.fix.md\nFix the login form.\nIt broke on Safari.",
        "123.fix.md\nFix the login form on Safari",
        ("news.single_line",),
    ),
    Rule(
        "NF007",
        "fragment-final-newline",
        "news",
        "A fragment ends with a newline.",
        "Editors and `cat` misbehave without one, and .editorconfig's insert_final_newline expects it.",
        "123.fix.md\nFix the login form[no newline]",
        "123.fix.md\nFix the login form",
    ),
    Rule(
        "NF008",
        "fragment-number",
        "news",
        "A fragment added by the branch carries the pull request's number.",
        "The changelog links each entry to its pull request by that number.",
        "99.fix.md\nFix the login form",
        "123.fix.md\nFix the login form",
    ),
    Rule(
        "NF009",
        "fragment-encoding",
        "news",
        "A fragment is valid UTF-8.",
        "towncrier reads fragments as UTF-8 and replaces other bytes with U+FFFD.",
        "",
        "123.fix.md\nFix the login form",
    ),
    Rule(
        "NF010",
        "fragment-not-a-file",
        "news",
        "Everything in the fragment directory is a regular file.",
        "towncrier follows symlinks and chokes on directories; neither belongs in the changelog.",
        "",
        "123.fix.md\nFix the login form",
    ),
    Rule(
        "NF011",
        "fragment-missing",
        "news",
        "The branch adds at least one news fragment.",
        "Every user-visible change gets a changelog entry; modifying an old fragment does not count.",
        "",
        "123.fix.md\nFix the login form",
        ("news.require",),
    ),
)

BY_CODE: dict[str, Rule] = {r.code: r for r in RULES}
BY_NAME: dict[str, Rule] = {r.name: r for r in RULES}


def lookup(code_or_name: str) -> Rule | None:
    return BY_CODE.get(code_or_name.upper()) or BY_NAME.get(code_or_name.lower())


NOWHERE = Location()


def violation(
    code: str,
    message: str,
    location: Location = NOWHERE,
    hint: str = "",
    severity: str = ERROR,
    context: str = "",
) -> Violation:
    return Violation(code, BY_CODE[code].name, message, location, hint, severity, context)


SEVERITIES = ("error", "warning", "off")


def with_severities(
    violations: list[Violation] | tuple[Violation, ...], rules: dict[str, str]
) -> tuple[Violation, ...]:
    """The project's severity per rule ([tool.devkit.rules] over its preset): "off" drops a rule."""
    if not rules:
        return tuple(violations)
    out = []
    for v in violations:
        severity = rules.get(v.code, v.severity)
        if severity != "off":
            out.append(v if severity == v.severity else v._replace(severity=severity))
    return tuple(out)

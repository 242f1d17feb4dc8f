"""The checks a commit, a branch or a pull request must pass (commit, branch, title, news, lint, and
the pull request as a whole). Each returns a `Report`; `devkit.commands` and `devkit ci` both call them.
The hook paths (commit, branch) stay on the standard library: imports of edges are lazy there."""

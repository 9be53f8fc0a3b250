"""Everything that knows Letta: entity graph, id formats, revisions, run states, Redis keys, agent files."""

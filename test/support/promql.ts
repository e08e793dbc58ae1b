// What a PromQL expression reads, for checking dashboards and alert rules
// against the metric names the code exports; and the exprs of a rules file.

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'atan2', 'inf', 'nan']);

/**
 * The metric names an expression selects: identifiers outside strings, label
 * matchers, ranges and grouping clauses, not called as functions, not
 * keywords. Grafana variables ($__rate_interval, $instance) live inside
 * ranges and matchers and drop out with them.
 */
export function metricNamesOf(expr: string): string[] {
  let text = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  text = text.replace(/\{[^}]*\}/g, ' ');
  text = text.replace(/\[[^\]]*\]/g, ' ');
  text = text.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  text = text.replace(/\boffset\s+-?\w+/g, ' ');
  const names = new Set<string>();
  for (const match of text.matchAll(/(\d[\w.]*)|([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)) {
    const [, number, name, call] = match;
    if (number !== undefined || name === undefined || call !== undefined || KEYWORDS.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return [...names];
}

/** `record:` and `expr:` entries of a Prometheus rules file (inline or `|` block), enough for the files in monitoring/. */
export function rulesOf(yamlText: string): Array<{ name: string; kind: 'record' | 'alert'; expr: string }> {
  const lines = yamlText.split('\n');
  const rules: Array<{ name: string; kind: 'record' | 'alert'; expr: string }> = [];
  let current: { name: string; kind: 'record' | 'alert' } | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const head = /^\s*-\s+(record|alert):\s*(\S+)/.exec(line);
    if (head) {
      current = { kind: head[1] as 'record' | 'alert', name: head[2] as string };
      continue;
    }
    const expr = /^(\s*)expr:\s*(.*)$/.exec(line);
    if (!expr || !current) continue;
    let text = (expr[2] as string).replace(/\s+#.*$/, '');
    if (text === '|' || text === '>') {
      const indent = (expr[1] as string).length;
      const block: string[] = [];
      while (i + 1 < lines.length && ((lines[i + 1] as string).trim() === '' || /^\s*/.exec(lines[i + 1] as string)![0].length > indent)) {
        block.push((lines[++i] as string).trim());
      }
      text = block.join('\n').trim();
    }
    rules.push({ ...current, expr: text });
    current = null;
  }
  return rules;
}

package org.ddcc.testserver;

import org.hibernate.resource.jdbc.spi.StatementInspector;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * H2 only: HAPI resolves the ids of a transaction's entries with one query whose condition is
 * {@code (RES_TYPE=? and FHIR_ID=?) or (RES_TYPE=? and FHIR_ID=?) or ...}
 * (IdHelperService#resolveResourceIdentitiesForFhirIdsUsingDatabase). PostgreSQL answers it from the
 * (RES_TYPE, FHIR_ID) index; H2 cannot use an index for an OR of ANDs and scans all of HFJ_RESOURCE,
 * so every transaction got slower as the store grew. Rewritten as the equivalent row-value list
 * {@code (RES_TYPE, FHIR_ID) in ((?,?),(?,?),...)}, which H2 looks up in that index. The parameters keep
 * their order; any other statement passes unchanged.
 */
public final class H2IdLookupRewrite implements StatementInspector {

	private static final String PAIR = "\\(?(\\w+)\\.RES_TYPE=\\? and \\1\\.FHIR_ID=\\?\\)?";
	/** Two or more ORed (type, id) pairs, as Hibernate prints them. */
	private static final Pattern ORED_PAIRS =
			Pattern.compile("\\(?" + PAIR + "(?: or " + PAIR.replace("\\1", "\\2") + ")+\\)?");
	private static final Pattern ONE_PAIR = Pattern.compile(PAIR);
	private static final boolean TRACE = Boolean.getBoolean("hapi.sql.traceRewrite");

	@Override
	public String inspect(String sql) {
		if (!sql.contains("HFJ_RESOURCE") || !sql.contains(".FHIR_ID=? or ") && !sql.contains(".FHIR_ID=?) or ")) {
			return sql;
		}
		Matcher m = ORED_PAIRS.matcher(sql);
		if (!m.find()) {
			return sql;
		}
		String matched = m.group();
		if (!isOneGroup(matched)) {
			return sql;
		}
		String alias = m.group(1);
		Matcher pairs = ONE_PAIR.matcher(matched);
		int n = 0;
		while (pairs.find()) {
			if (!alias.equals(pairs.group(1))) {
				return sql;
			}
			n++;
		}
		StringBuilder in = new StringBuilder("(" + alias + ".RES_TYPE," + alias + ".FHIR_ID) in (");
		for (int i = 0; i < n; i++) {
			in.append(i == 0 ? "(?,?)" : ",(?,?)");
		}
		in.append(')');
		String rewritten = sql.substring(0, m.start()) + in + sql.substring(m.end());
		if (TRACE) {
			System.err.println("H2IdLookupRewrite: " + sql + "\n  -> " + rewritten);
		}
		return rewritten;
	}

	/**
	 * Whether {@code text} is one parenthesised group: its first '(' closes at its last character. Only then
	 * is the whole OR replaced, never part of a larger {@code x and p1 or p2}, where AND binds tighter.
	 */
	private static boolean isOneGroup(String text) {
		if (!text.startsWith("(") || !text.endsWith(")")) {
			return false;
		}
		int depth = 0;
		for (int i = 0; i < text.length(); i++) {
			char c = text.charAt(i);
			if (c == '(') {
				depth++;
			} else if (c == ')') {
				depth--;
			}
			if (depth == 0 && i < text.length() - 1) {
				return false;
			}
		}
		return depth == 0;
	}
}

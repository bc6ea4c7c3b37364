package org.ddcc.igvalidator;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.ConceptValidationOptions;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.context.support.ValidationSupportContext;
import java.util.Map;
import java.util.Set;
import java.util.function.BiConsumer;

/**
 * SNOMED CT and LOINC exist, but only a terminology server holds their concepts (R4 core ships each as a
 * CodeSystem with {@code content = not-present}). Without one, HAPI's in-memory terminology support fails
 * every code of theirs that is checked against the code system alone ("Validation failed (for
 * 'http://snomed.info/sct#…')"), which happens where a binding is only an example; in a DDCC document
 * that failure also makes the Composition's reference to the resource match no profile.
 * <p>
 * This module answers those code-system-only checks as "not checked" (the code is accepted and the check
 * recorded as skipped). It answers nothing else: a check against a value set (a bound element) still goes
 * to the in-memory support, which knows the package's enumerated value sets.
 */
final class OfflineCodeSystems implements IValidationSupport {

	static final Map<String, String> SYSTEMS = Map.of(
			"http://snomed.info/sct", "SNOMED CT",
			"http://loinc.org", "LOINC");

	private final FhirContext ctx;
	/** (system, code) of each check answered as not checked */
	private final BiConsumer<String, String> skipped;

	OfflineCodeSystems(FhirContext ctx, BiConsumer<String, String> skipped) {
		this.ctx = ctx;
		this.skipped = skipped;
	}

	@Override
	public FhirContext getFhirContext() {
		return ctx;
	}

	@Override
	public String getName() {
		return "ddcc-ig-validator offline code systems (SNOMED CT, LOINC: not checked)";
	}

	@Override
	public boolean isCodeSystemSupported(ValidationSupportContext context, String system) {
		return SYSTEMS.containsKey(system);
	}

	@Override
	public CodeValidationResult validateCode(
			ValidationSupportContext context,
			ConceptValidationOptions options,
			String system,
			String code,
			String display,
			String valueSetUrl) {
		if (valueSetUrl != null || system == null || !SYSTEMS.containsKey(system) || code == null) {
			return null;
		}
		skipped.accept(system, code);
		return new CodeValidationResult().setCode(code).setDisplay(display);
	}
}

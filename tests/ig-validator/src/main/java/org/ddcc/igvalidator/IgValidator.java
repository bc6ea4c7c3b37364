package org.ddcc.igvalidator;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.parser.IParser;
import ca.uhn.fhir.parser.LenientErrorHandler;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import ca.uhn.fhir.validation.ValidationOptions;
import ca.uhn.fhir.validation.ValidationResult;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.NpmPackageValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.PrePopulatedValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.UnknownCodeSystemWarningValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.r4.model.CanonicalType;
import org.hl7.fhir.r4.model.ElementDefinition;
import org.hl7.fhir.r4.model.Enumerations;
import org.hl7.fhir.r4.model.StructureDefinition;
import org.hl7.fhir.utilities.npm.NpmPackage;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Validates FHIR R4 JSON files against the WHO DDCC IG with HAPI's instance validator, offline.
 *
 * <pre>java -cp ... org.ddcc.igvalidator.IgValidator --package who.ddcc-1.0.0-package.tgz file.json...</pre>
 *
 * A document Bundle is validated against DDCCVSDocument (the profile can be changed with
 * {@code --document-profile}); then each entry resource, on its own, against every profile in its
 * {@code meta.profile}. Any other file is validated against its own {@code meta.profile} (or the
 * base resource when it has none). Prints one JSON object on stdout; exit 0 after validating
 * (whatever was found), 2 on usage or load errors.
 */
public final class IgValidator {

	static final String DDCC_VS_DOCUMENT = "http://smart.who.int/ddcc/StructureDefinition/DDCCVSDocument";

	private static final ObjectMapper JSON = new ObjectMapper();

	private final FhirContext ctx;
	private final FhirValidator validator;
	private final Set<String> knownProfiles = new TreeSet<>();
	private final String packageId;
	private final Set<String> missingDependencies = new LinkedHashSet<>();
	/** canonical base URL -> package id#version of a dependency that is not available offline */
	private final Map<String, String> dependencyBases = new LinkedHashMap<>();
	/** dependency profiles replaced by a stub of their base type: url -> type */
	private final Map<String, String> stubbed = new LinkedHashMap<>();
	private final Map<String, StructureDefinition> packageProfiles = new LinkedHashMap<>();
	/** distinct checks that could not run: key -> {kind, target, message, count} */
	private final Map<String, ObjectNode> skipped = new LinkedHashMap<>();

	private IgValidator(Path packageFile) throws IOException {
		ctx = FhirContext.forR4Cached();

		NpmPackageValidationSupport npm = new NpmPackageValidationSupport(ctx);
		NpmPackage pkg;
		try (InputStream in = Files.newInputStream(packageFile)) {
			pkg = NpmPackage.fromPackage(in);
		}
		packageId = pkg.name() + "#" + pkg.version();
		NpmPackage.NpmPackageFolder folder = pkg.getFolders().get("package");
		if (folder == null) {
			throw new IOException("no package/ folder in " + packageFile);
		}
		IParser parser = ctx.newJsonParser();
		parser.setParserErrorHandler(new LenientErrorHandler(false));
		for (String name : folder.listFiles()) {
			// package/*.json only: the example/ folder holds instances, not conformance resources
			if (!name.toLowerCase(Locale.ROOT).endsWith(".json") || name.equals("package.json")
					|| name.startsWith(".")) {
				continue;
			}
			String text = new String(folder.getContent().get(name), StandardCharsets.UTF_8);
			IBaseResource resource;
			try {
				resource = parser.parseResource(text);
			} catch (RuntimeException e) {
				continue; // e.g. .index.json
			}
			npm.addResource(resource);
			if (resource instanceof StructureDefinition sd) {
				knownProfiles.add(sd.getUrl());
			}
		}
		for (String dep : pkg.dependencies()) {
			if (!dep.startsWith("hl7.fhir.r4.core#")) {
				missingDependencies.add(dep);
			}
		}
		// canonical bases of the dependencies, from the IG's ImplementationGuide.dependsOn.uri
		byte[] igBytes = null;
		for (String name : folder.listFiles()) {
			if (name.startsWith("ImplementationGuide-") && name.endsWith(".json")) {
				igBytes = folder.getContent().get(name);
			}
		}
		if (igBytes != null) {
			for (JsonNode d : JSON.readTree(igBytes).path("dependsOn")) {
				String uri = d.path("uri").asText("");
				String id = d.path("packageId").asText("") + "#" + d.path("version").asText("");
				int cut = uri.indexOf("/ImplementationGuide/");
				if (cut > 0 && missingDependencies.contains(id)) {
					dependencyBases.put(uri.substring(0, cut + 1), id);
				}
			}
		}
		for (String dep : missingDependencies) {
			// the extension pack publishes its extensions under the core namespace
			if (dep.startsWith("hl7.fhir.uv.extensions")) {
				dependencyBases.put("http://hl7.org/fhir/StructureDefinition/", dep);
			}
		}

		UnknownCodeSystemWarningValidationSupport unknownCodeSystems = new UnknownCodeSystemWarningValidationSupport(ctx);
		unknownCodeSystems.setNonExistentCodeSystemSeverity(IValidationSupport.IssueSeverity.WARNING);

		DefaultProfileValidationSupport core = new DefaultProfileValidationSupport(ctx);
		PrePopulatedValidationSupport stubs = stubsForDependencyProfiles(core, npm);

		ValidationSupportChain chain = new ValidationSupportChain(
				core,
				npm,
				stubs,
				new CommonCodeSystemsTerminologyService(ctx),
				new OfflineCodeSystems(ctx, (system, code) -> skip("terminology-unavailable", system,
						OfflineCodeSystems.SYSTEMS.get(system) + " codes were not checked against the code system "
								+ "(a terminology server holds its concepts), e.g. " + system + "#" + code)),
				new InMemoryTerminologyServerValidationSupport(ctx),
				new SnapshotGeneratingValidationSupport(ctx),
				unknownCodeSystems);

		FhirInstanceValidator module = new FhirInstanceValidator(chain);
		module.setAnyExtensionsAllowed(true);
		// An unknown profile is reported as a warning by HAPI, then handled in classify(): from a
		// dependency package that is not available -> skipped check; anything else -> error.
		// (As errors, a dependency's profile, e.g. IPS CodeableConcept-uv-ips on
		// Immunization.vaccineCode, also makes every reference to that resource fail its
		// targetProfile match: Reference_REF_CantMatchChoice.)
		module.setErrorForUnknownProfiles(false);
		module.setNoTerminologyChecks(false);
		validator = ctx.newValidator();
		validator.registerValidatorModule(module);
		// warm-up: the first validation builds the validator's worker context (R4 core, snapshots)
		validator.validateWithResult("{\"resourceType\":\"Basic\",\"code\":{\"text\":\"x\"}}",
				new ValidationOptions());
	}

	/**
	 * Data type profiles of unavailable dependency packages that the DDCC snapshots name in
	 * ElementDefinition.type.profile (e.g. IPS CodeableConcept-uv-ips on Immunization.vaccineCode).
	 * HAPI reports an unknown type profile as an error (Validation_VAL_Unknown_Profile, whatever
	 * setErrorForUnknownProfiles says), and that error then also fails every reference whose
	 * targetProfile is the DDCC profile (Reference_REF_CantMatchChoice). Each such profile is
	 * replaced by a stub that only says "a &lt;type&gt;": the base type is still fully checked, the
	 * dependency profile's own constraints are not, and each stub is listed in skippedChecks.
	 */
	private PrePopulatedValidationSupport stubsForDependencyProfiles(
			IValidationSupport core, NpmPackageValidationSupport npm) {
		PrePopulatedValidationSupport stubs = new PrePopulatedValidationSupport(ctx);
		Map<String, String> typeOf = new LinkedHashMap<>();
		Map<String, Integer> uses = new LinkedHashMap<>();
		for (IBaseResource r : npm.fetchAllStructureDefinitions()) {
			StructureDefinition sd = (StructureDefinition) r;
			for (ElementDefinition ed : sd.getSnapshot().getElement()) {
				for (ElementDefinition.TypeRefComponent t : ed.getType()) {
					for (CanonicalType p : t.getProfile()) {
						String url = p.getValue();
						if (url == null || dependencyOf(url) == null || knownProfiles.contains(url)
								|| core.fetchStructureDefinition(url) != null) {
							continue;
						}
						String code = t.getCode();
						// extension definitions are not stubbed: a stub has no context and no fixed url
						if (code == null || code.equals("Extension") || core.fetchStructureDefinition(
								"http://hl7.org/fhir/StructureDefinition/" + code) == null) {
							continue;
						}
						typeOf.putIfAbsent(url, code);
						uses.merge(url, 1, Integer::sum);
					}
				}
			}
		}
		for (Map.Entry<String, String> e : typeOf.entrySet()) {
			String url = e.getKey();
			String code = e.getValue();
			StructureDefinition stub = new StructureDefinition();
			stub.setUrl(url);
			stub.setName("UnavailableDependencyStub");
			stub.setStatus(Enumerations.PublicationStatus.DRAFT);
			stub.setFhirVersion(Enumerations.FHIRVersion._4_0_1);
			boolean resource = Character.isUpperCase(code.charAt(0))
					&& ctx.getResourceTypes().contains(code);
			stub.setKind(resource ? StructureDefinition.StructureDefinitionKind.RESOURCE
					: StructureDefinition.StructureDefinitionKind.COMPLEXTYPE);
			stub.setAbstract(false);
			stub.setType(code);
			stub.setBaseDefinition("http://hl7.org/fhir/StructureDefinition/" + code);
			stub.setDerivation(StructureDefinition.TypeDerivationRule.CONSTRAINT);
			ElementDefinition root = stub.getDifferential().addElement();
			root.setId(code);
			root.setPath(code);
			stubs.addStructureDefinition(stub);
			stubbed.put(url, code);
		}
		for (IBaseResource r : npm.fetchAllStructureDefinitions()) {
			StructureDefinition sd = (StructureDefinition) r;
			packageProfiles.put(sd.getUrl(), sd);
		}
		return stubs;
	}

	/** stubbed dependency profiles that validating against {@code profile} can reach */
	private Set<String> stubsReachableFrom(String profile) {
		Set<String> out = new TreeSet<>();
		Set<String> seen = new LinkedHashSet<>();
		List<String> todo = new ArrayList<>(List.of(profile));
		while (!todo.isEmpty()) {
			String url = todo.remove(todo.size() - 1);
			if (url == null || !seen.add(url)) {
				continue;
			}
			if (stubbed.containsKey(url)) {
				out.add(url);
				continue;
			}
			StructureDefinition sd = packageProfiles.get(url);
			if (sd == null) {
				continue;
			}
			for (ElementDefinition ed : sd.getSnapshot().getElement()) {
				for (ElementDefinition.TypeRefComponent t : ed.getType()) {
					t.getProfile().forEach(c -> todo.add(stripVersion(c.getValue())));
					t.getTargetProfile().forEach(c -> todo.add(stripVersion(c.getValue())));
				}
			}
		}
		return out;
	}

	private static String stripVersion(String canonical) {
		if (canonical == null) {
			return null;
		}
		int bar = canonical.indexOf('|');
		return bar < 0 ? canonical : canonical.substring(0, bar);
	}

	public static void main(String[] args) {
		PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
		String packagePath = null;
		String documentProfile = DDCC_VS_DOCUMENT;
		List<Path> files = new ArrayList<>();
		for (int i = 0; i < args.length; i++) {
			switch (args[i]) {
				case "--package" -> packagePath = i + 1 < args.length ? args[++i] : null;
				case "--document-profile" -> documentProfile = i + 1 < args.length ? args[++i] : null;
				case "-h", "--help" -> {
					usage(null);
					return;
				}
				default -> {
					if (args[i].startsWith("--")) {
						usage("unknown option " + args[i]);
					}
					files.add(Path.of(args[i]));
				}
			}
		}
		if (packagePath == null || documentProfile == null || files.isEmpty()) {
			usage("--package <tgz> and at least one file are required");
		}
		for (Path f : files) {
			if (!Files.isReadable(f)) {
				fail("cannot read " + f);
			}
		}

		long t0 = System.nanoTime();
		IgValidator v;
		try {
			v = new IgValidator(Path.of(packagePath));
		} catch (IOException | RuntimeException e) {
			fail("cannot load package " + packagePath + ": " + e);
			return;
		}
		if (!v.knownProfiles.contains(documentProfile)) {
			fail("profile " + documentProfile + " is not in " + v.packageId);
		}
		long loadMillis = (System.nanoTime() - t0) / 1_000_000;

		ObjectNode result = JSON.createObjectNode();
		ArrayNode fileResults = result.putArray("files");
		for (Path f : files) {
			long t1 = System.nanoTime();
			ObjectNode fr = JSON.createObjectNode();
			fr.put("file", f.toString());
			ArrayNode issues = fr.putArray("issues");
			try {
				v.validateFile(Files.readString(f, StandardCharsets.UTF_8), documentProfile, issues);
			} catch (IOException e) {
				fail("cannot read " + f + ": " + e);
			}
			fr.put("millis", (System.nanoTime() - t1) / 1_000_000);
			fileResults.add(fr);
		}
		ArrayNode skippedChecks = result.putArray("skippedChecks");
		v.skipped.values().forEach(skippedChecks::add);
		ArrayNode deps = result.putArray("unavailableDependencies");
		v.missingDependencies.forEach(deps::add);
		result.put("package", v.packageId);
		result.put("loadMillis", loadMillis);
		try {
			out.println(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(result));
		} catch (IOException e) {
			fail("cannot write JSON: " + e);
		}
		out.flush();
		System.exit(0);
	}

	private void validateFile(String text, String documentProfile, ArrayNode issues) {
		JsonNode root;
		try {
			root = JSON.readTree(text);
		} catch (IOException e) {
			addIssue(issues, "error", "(file)", null, null, null, "not JSON: " + e.getMessage());
			return;
		}
		if (root == null || !root.isObject() || !root.hasNonNull("resourceType")) {
			addIssue(issues, "error", "(file)", null, null, null, "not a FHIR resource (no resourceType)");
			return;
		}
		String type = root.get("resourceType").asText();
		boolean document = "Bundle".equals(type) && "document".equals(root.path("type").asText());
		if (document) {
			validate(text, documentProfile, "Bundle", issues);
			JsonNode entries = root.path("entry");
			for (int i = 0; i < entries.size(); i++) {
				JsonNode res = entries.get(i).path("resource");
				if (!res.isObject()) {
					continue;
				}
				String label = label(res, i);
				List<String> profiles = profiles(res);
				if (profiles.isEmpty()) {
					addIssue(issues, "information", label, null, "Bundle.entry[" + i + "].resource", null,
							"entry resource has no meta.profile: validated only as part of the Bundle");
					continue;
				}
				String entryText = res.toString();
				for (String p : profiles) {
					validate(entryText, p, label, issues);
				}
			}
		} else {
			List<String> profiles = profiles(root);
			String label = "Bundle".equals(type) ? "Bundle" : label(root, -1);
			if (profiles.isEmpty()) {
				addIssue(issues, "information", label, null, null, null,
						"resource has no meta.profile: validated against the base " + type + " only");
				validate(text, null, label, issues);
			} else {
				for (String p : profiles) {
					validate(text, p, label, issues);
				}
			}
		}
	}

	private void validate(String text, String profile, String label, ArrayNode issues) {
		ValidationOptions options = new ValidationOptions();
		if (profile != null) {
			options.addProfile(profile);
			for (String url : stubsReachableFrom(profile)) {
				skip("profile-unavailable", url, "data type profile " + url + " is not available: elements that "
						+ "use it were checked as a plain " + stubbed.get(url) + " only (its own constraints were not)");
			}
		}
		ValidationResult result = validator.validateWithResult(text, options);
		for (SingleValidationMessage m : result.getMessages()) {
			String severity = severity(m.getSeverity());
			String[] cause = classify(m);
			if (cause[0] == null && cause[1] != null) {
				severity = "error"; // an unknown profile that no missing dependency explains
			}
			ObjectNode issue =
					addIssue(issues, severity, label, profile, m.getLocationString(), m.getMessageId(), m.getMessage());
			if (cause[0] != null) {
				issue.put("cause", cause[0]);
			}
		}
	}

	private static String severity(ResultSeverityEnum s) {
		if (s == null) {
			return "information";
		}
		return switch (s) {
			case FATAL, ERROR -> "error";
			case WARNING -> "warning";
			case INFORMATION -> "information";
		};
	}

	private static ObjectNode addIssue(ArrayNode issues, String severity, String resource, String profile,
			String location, String messageId, String message) {
		ObjectNode o = issues.addObject();
		o.put("severity", severity);
		o.put("resource", resource);
		o.put("profile", profile);
		o.put("location", location);
		o.put("message", message);
		if (messageId != null) {
			o.put("messageId", messageId);
		}
		return o;
	}

	private static List<String> profiles(JsonNode resource) {
		List<String> out = new ArrayList<>();
		for (JsonNode p : resource.path("meta").path("profile")) {
			if (p.isTextual()) {
				out.add(p.asText());
			}
		}
		return out;
	}

	private static String label(JsonNode resource, int entry) {
		String type = resource.path("resourceType").asText("?");
		String id = resource.path("id").asText("");
		if (!id.isEmpty()) {
			return type + "/" + id;
		}
		return entry >= 0 ? type + " (entry[" + entry + "], no id)" : type + " (no id)";
	}

	// ---- which issues come from checks that could not run ----------------------------------

	private static final Pattern URL = Pattern.compile("(https?://[^\\s'\"|,)]+|urn:[^\\s'\"|,)]+)");

	/** messageIds (org.hl7.fhir.utilities.i18n.I18nConstants) that mean "terminology not available" */
	private static final Set<String> TX_UNAVAILABLE_IDS = lower(
			"UNKNOWN_CODESYSTEM",
			"UNKNOWN_CODESYSTEM_VERSION",
			"TERMINOLOGY_TX_SYSTEM_NOTKNOWN",
			"Terminology_TX_System_Unknown",
			"TERMINOLOGY_TX_SYSTEM_NO_CODE",
			"Terminology_TX_ValueSet_NotFound",
			"Terminology_TX_ValueSet_NotFound_CS",
			"Terminology_TX_ValueSet_NotFound2",
			"VALUESET_TOO_COSTLY",
			"VALUESET_TOO_COSTLY_TIME",
			"Terminology_TX_NoValid_Unknown");
	// Terminology_PassThrough_TX_Message carries both "code system unknown" (skipped check) and
	// "Unknown code 'system#code'" (a real error): those are told apart by their text only.

	private static final Pattern TX_UNAVAILABLE_TEXT = Pattern.compile(
			"(?i)(code ?system is unknown|unknown code ?system|was not checked because the code ?system is not available"
					+ "|code ?system .* (could not be found|is not known|not (be )?found)"
					+ "|value ?set .* (could not be found|not found|could not be expanded|cannot be expanded)"
					+ "|unable to (expand|resolve) (the )?value ?set|no terminology server"
					+ "|not (be )?checked because)");

	private static final Set<String> PROFILE_UNAVAILABLE_IDS = lower(
			"Validation_VAL_Unknown_Profile",
			"VALIDATION_VAL_PROFILE_UNKNOWN",
			"VALIDATION_VAL_PROFILE_UNKNOWN_NOT_POLICY",
			"VALIDATION_VAL_PROFILE_UNKNOWN_ERROR",
			"VALIDATION_VAL_PROFILE_UNKNOWN_ERROR_NETWORK",
			"Reference_REF_CantResolveProfile",
			"Extension_EXT_Unknown",
			"Extension_EXT_Unknown_NotHere",
			"EXTENSION_EXT_UNKNOWN",
			"EXTENSION_EXT_UNKNOWN_NOTHERE");

	private static Set<String> lower(String... ids) {
		Set<String> out = new TreeSet<>();
		for (String id : ids) {
			out.add(id.toLowerCase(Locale.ROOT));
		}
		return out;
	}

	private static final Pattern PROFILE_UNAVAILABLE_TEXT = Pattern.compile(
			"(?i)(profile reference .* (could not be resolved|has not been checked because it (is unknown|could not be found))"
					+ "|failed to retrieve profile"
					+ "|unable to (locate|resolve) (the )?profile|unknown profile"
					+ "|unknown extension|extension .* (could not be found|is unknown)"
					+ "|structuredefinition .* (could not be found|not found))");

	/**
	 * {cause, target}: cause "terminology-unavailable" (code system / value set not available offline),
	 * "profile-unavailable" (a profile or extension of a dependency package that is not available), or
	 * null (a real finding). For a null cause, a non-null target means "unknown profile that no
	 * missing dependency explains" (reported as an error).
	 */
	private String[] classify(SingleValidationMessage m) {
		// message ids change case between core versions: compare them lower-cased
		String id = m.getMessageId() == null ? "" : m.getMessageId().toLowerCase(Locale.ROOT);
		String msg = m.getMessage() == null ? "" : m.getMessage();
		Matcher u = URL.matcher(msg);
		String target = u.find() ? u.group(1).replaceAll("[.#]+$", "") : "(unnamed)";
		if (TX_UNAVAILABLE_IDS.contains(id) || TX_UNAVAILABLE_TEXT.matcher(msg).find()) {
			skip("terminology-unavailable", target, msg);
			return new String[] {"terminology-unavailable", null};
		}
		if (PROFILE_UNAVAILABLE_IDS.contains(id) || PROFILE_UNAVAILABLE_TEXT.matcher(msg).find()) {
			if (dependencyOf(target) != null) {
				skip("profile-unavailable", target, msg);
				return new String[] {"profile-unavailable", null};
			}
			return new String[] {null, target};
		}
		return new String[] {null, null};
	}

	/** the unavailable dependency package that publishes {@code url}, or null */
	private String dependencyOf(String url) {
		for (Map.Entry<String, String> e : dependencyBases.entrySet()) {
			if (url.startsWith(e.getKey())) {
				return e.getValue();
			}
		}
		return null;
	}

	private void skip(String kind, String target, String message) {
		String key = kind + " " + target;
		ObjectNode o = skipped.get(key);
		if (o == null) {
			o = JSON.createObjectNode();
			o.put("kind", kind);
			o.put("target", target);
			String dep = dependencyOf(target);
			o.put("source", dep != null ? "dependency package " + dep + " (not available offline)"
					: "terminology not in the DDCC package nor R4 core (needs a terminology server)");
			o.put("message", message);
			o.put("count", 0);
			skipped.put(key, o);
		}
		o.put("count", o.get("count").asInt() + 1);
	}

	// ---- CLI helpers ------------------------------------------------------------------------

	private static void usage(String error) {
		PrintStream err = System.err;
		if (error != null) {
			err.println("ig-validator: " + error);
		}
		err.println("usage: IgValidator --package <ig-package.tgz> [--document-profile <canonical>] <file.json>...");
		err.println("  document Bundles: validated against " + DDCC_VS_DOCUMENT + " (default), then each");
		err.println("  entry resource against every profile in its meta.profile. Output: JSON on stdout.");
		System.exit(error == null ? 0 : 2);
	}

	private static void fail(String message) {
		System.err.println("ig-validator: " + message);
		System.exit(2);
	}
}

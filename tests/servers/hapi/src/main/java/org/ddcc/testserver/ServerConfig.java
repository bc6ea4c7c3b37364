package org.ddcc.testserver;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirPostgresDialect;
import ca.uhn.fhir.jpa.model.entity.StorageSettings;
import ca.uhn.fhir.jpa.provider.IJpaSystemProvider;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.narrative2.NullNarrativeGenerator;
import ca.uhn.fhir.narrative.INarrativeGenerator;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.IncomingRequestAddressStrategy;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.interceptor.RequestValidatingInterceptor;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.hl7.fhir.r5.utils.validation.constants.BestPracticeWarningLevel;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import jakarta.persistence.EntityManagerFactory;
import org.apache.commons.dbcp2.BasicDataSource;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

import javax.sql.DataSource;
import java.util.Properties;

/**
 * Spring wiring of the test server: HAPI's own JPA R4 configuration plus the few beans a
 * deployment must provide (settings, data source, entity manager, transaction manager,
 * the REST servlet). No Spring Boot, no subscriptions, MDM, CQL, bulk export, OpenAPI or
 * web UI.
 */
@Configuration
@Import({
	JpaR4Config.class,
	HapiJpaConfig.class,
	ThreadPoolFactoryConfig.class,
	JpaBatch2Config.class,
	// in-memory message channels (LinkedBlockingQueue) that batch2 needs; no subscription is processed
	SubscriptionChannelConfig.class,
	Batch2JobsConfig.class
})
public class ServerConfig {

	@Bean
	public JpaStorageSettings storageSettings() {
		JpaStorageSettings s = new JpaStorageSettings();
		// Client-assigned ids allowed unless purely numeric (our ids are UUIDs).
		s.setResourceClientIdStrategy(JpaStorageSettings.ClientIdStrategyEnum.ALPHANUMERIC);
		// Never answer a search from the search cache (null = no lookup at all; the
		// starter's reuse_cached_search_results_millis: 0 has the same visible effect).
		s.setReuseCachedSearchResultsForMillis(null);
		s.setAllowExternalReferences(true);
		s.setAllowMultipleDelete(true);
		s.setDeleteEnabled(true);
		s.setExpungeEnabled(true);
		s.setDeleteExpungeEnabled(true);
		s.setIndexMissingFields(StorageSettings.IndexEnabledEnum.DISABLED);
		s.setAdvancedHSearchIndexing(false);
		s.setHibernateSearchIndexFullText(false);
		s.setHibernateSearchIndexSearchParams(false);
		// As the hapiproject/hapi image (its starter's store_meta_source_information: NONE): no meta.source.
		// JPA's own default (SOURCE_URI_AND_REQUEST_ID) rewrites every new version's row, text included, to
		// add the request id: twice the resource text written to the database. -Dhapi.storeMetaSource=... to
		// compare (bench/load --hapi-opts).
		s.setStoreMetaSourceInformation(JpaStorageSettings.StoreMetaSourceInformationEnum.valueOf(
				System.getProperty("hapi.storeMetaSource", "NONE")));
		return s;
	}

	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	@Bean
	public SubscriptionSettings subscriptionSettings() {
		// No supported subscription types: subscriptions are off.
		return new SubscriptionSettings();
	}

	/** Keep stored resources as sent: no generated narrative. */
	@Bean
	public INarrativeGenerator narrativeGenerator() {
		return new NullNarrativeGenerator();
	}

	/** {@code HAPI_DB_URL}: a PostgreSQL JDBC URL, else H2 in memory (empty at every start). */
	static String databaseUrl() {
		String url = System.getenv("HAPI_DB_URL");
		return url == null || url.isBlank() ? "jdbc:h2:mem:hapi;DB_CLOSE_DELAY=-1" : url;
	}

	static boolean postgres() {
		return databaseUrl().startsWith("jdbc:postgresql:");
	}

	@Bean(destroyMethod = "close")
	public BasicDataSource dataSource() {
		BasicDataSource ds = new BasicDataSource();
		if (postgres()) {
			ds.setDriver(new org.postgresql.Driver());
			ds.setUsername(System.getenv().getOrDefault("HAPI_DB_USER", "postgres"));
			ds.setPassword(System.getenv().getOrDefault("HAPI_DB_PASSWORD", ""));
		} else {
			ds.setDriver(new org.h2.Driver());
			ds.setUsername("sa");
			ds.setPassword("");
		}
		ds.setUrl(databaseUrl());
		ds.setMaxTotal(Integer.getInteger("hapi.db.maxConnections", 10));
		ds.setMaxWait(java.time.Duration.ofSeconds(30));
		return ds;
	}

	@Primary
	@Bean
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory beanFactory,
			FhirContext fhirContext,
			JpaStorageSettings storageSettings,
			DataSource dataSource) {
		LocalContainerEntityManagerFactoryBean emf =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, storageSettings);
		emf.setPersistenceUnitName("HAPI_PU");
		emf.setDataSource(dataSource);
		Properties p = new Properties();
		p.put("hibernate.dialect", (postgres() ? HapiFhirPostgresDialect.class : HapiFhirH2Dialect.class).getName());
		p.put("hibernate.hbm2ddl.auto", "update");
		p.put("hibernate.format_sql", "false");
		p.put("hibernate.show_sql", "false");
		p.put("hibernate.jdbc.batch_size", "20");
		p.put("hibernate.cache.use_query_cache", "false");
		p.put("hibernate.cache.use_second_level_cache", "false");
		p.put("hibernate.cache.use_structured_entries", "false");
		p.put("hibernate.cache.use_minimal_puts", "false");
		p.put("hibernate.archive.scanner", "org.hibernate.boot.archive.scan.internal.DisabledScanner");
		p.put("hibernate.search.enabled", "false");
		if (!postgres()) {
			// H2 cannot use an index for HAPI's ORed id lookups: see H2IdLookupRewrite.
			p.put("hibernate.session_factory.statement_inspector", H2IdLookupRewrite.class.getName());
		}
		emf.setJpaProperties(p);
		return emf;
	}

	@Primary
	@Bean
	public JpaTransactionManager transactionManager(EntityManagerFactory emf) {
		JpaTransactionManager tm = new JpaTransactionManager();
		tm.setEntityManagerFactory(emf);
		return tm;
	}

	@Bean
	public RestfulServer restfulServer(
			IFhirSystemDao<?, ?> systemDao,
			ResourceProviderFactory resourceProviderFactory,
			IJpaSystemProvider systemProvider,
			JpaStorageSettings storageSettings,
			ISearchParamRegistry searchParamRegistry,
			IValidationSupport validationSupport,
			DatabaseBackedPagingProvider pagingProvider) {
		RestfulServer server = new RestfulServer(systemDao.getContext());
		server.registerProviders(resourceProviderFactory.createProviders());
		server.registerProvider(systemProvider);
		JpaCapabilityStatementProvider capabilities = new JpaCapabilityStatementProvider(
				server, systemDao, storageSettings, searchParamRegistry, validationSupport);
		capabilities.setImplementationDescription("ddcc-mediator HAPI FHIR R4 test server");
		server.setServerConformanceProvider(capabilities);
		server.setPagingProvider(pagingProvider);
		server.setDefaultResponseEncoding(EncodingEnum.JSON);
		server.setServerAddressStrategy(new IncomingRequestAddressStrategy());
		if ("1".equals(System.getenv("HAPI_VALIDATE"))) {
			// Every resource a request carries is validated against the R4 base definitions (and any
			// profile HAPI knows); errors refuse the request with 422 and an OperationOutcome.
			RequestValidatingInterceptor validating = new RequestValidatingInterceptor();
			FhirInstanceValidator instanceValidator = new FhirInstanceValidator(validationSupport);
			// FHIR's best-practice invariants (dom-6: "should have narrative") are advice, not faults.
			instanceValidator.setBestPracticeWarningLevel(BestPracticeWarningLevel.Ignore);
			// This server knows R4 core only: resources are checked against their base definitions, and a
			// profile it does not have (the DDCC ones) is a warning (tests/ig-validator checks those).
			instanceValidator.setErrorForUnknownProfiles(false);
			validating.addValidatorModule(instanceValidator);
			// The first validation builds the validator's worker context (R4 core, snapshots): 10 s and
			// more on two busy cores. Done here, before the ready line, not in the first client's request.
			FhirValidator warmUp = systemDao.getContext().newValidator();
			warmUp.registerValidatorModule(instanceValidator);
			warmUp.validateWithResult("{\"resourceType\":\"Basic\",\"code\":{\"text\":\"warm-up\"}}");
			validating.setFailOnSeverity(ResultSeverityEnum.ERROR);
			server.registerInterceptor(validating);
		}
		return server;
	}
}

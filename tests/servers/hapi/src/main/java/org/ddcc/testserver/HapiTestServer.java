package org.ddcc.testserver;

import ca.uhn.fhir.rest.server.RestfulServer;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.CustomRequestLog;
import org.eclipse.jetty.server.RequestLogWriter;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;

/**
 * Entry point: {@code java ... org.ddcc.testserver.HapiTestServer [port]}.
 * <p>
 * Port: first argument, else env {@code HAPI_PORT}, else 8080; 0 lets the OS choose.
 * Binds 127.0.0.1 only. Prints exactly one line to stdout when ready:
 * {@code HAPI FHIR ready http://127.0.0.1:<port>/fhir}. All logging goes to stderr.
 */
public final class HapiTestServer {

	private HapiTestServer() {}

	public static void main(String[] args) throws Exception {
		int port = parsePort(args);

		AnnotationConfigApplicationContext ctx = new AnnotationConfigApplicationContext();
		ctx.register(ServerConfig.class);
		ctx.refresh();
		RestfulServer restfulServer = ctx.getBean(RestfulServer.class);

		QueuedThreadPool threads = new QueuedThreadPool(Integer.getInteger("hapi.http.maxThreads", 32), 4);
		threads.setName("hapi-http");
		Server jetty = new Server(threads);
		ServerConnector connector = new ServerConnector(jetty);
		connector.setHost("127.0.0.1");
		connector.setPort(port);
		jetty.addConnector(connector);

		ServletContextHandler context = new ServletContextHandler();
		context.setContextPath("/");
		ServletHolder holder = new ServletHolder("fhir", restfulServer);
		holder.setInitOrder(1); // initialise HAPI's servlet before the ready line
		context.addServlet(holder, "/fhir/*");
		jetty.setHandler(context);
		String requestLog = System.getenv("HAPI_REQUEST_LOG");
		if (requestLog != null && !requestLog.isBlank()) {
			// One line per request: method, path, status, microseconds. For finding which call costs
			// (bench/load --keep); paths carry resource ids only, no query strings (search values).
			jetty.setRequestLog(new CustomRequestLog(new RequestLogWriter(requestLog), "%m %U %s %{us}T"));
		}
		jetty.setStopAtShutdown(false);

		Runtime.getRuntime().addShutdownHook(new Thread(() -> {
			try {
				jetty.stop();
			} catch (Exception ignored) {
				// shutting down anyway
			}
			ctx.close();
		}, "hapi-shutdown"));

		jetty.start();
		System.out.println("HAPI FHIR ready http://127.0.0.1:" + connector.getLocalPort() + "/fhir");
		System.out.flush();
		if (Boolean.getBoolean("hapi.exitWhenReady")) {
			// used by build.sh to record a class-data-sharing archive (-XX:ArchiveClassesAtExit)
			System.exit(0);
		}
		jetty.join();
	}

	private static int parsePort(String[] args) {
		String raw = args.length > 0 ? args[0] : System.getenv("HAPI_PORT");
		if (raw == null || raw.isBlank()) {
			return 8080;
		}
		try {
			int p = Integer.parseInt(raw.trim());
			if (p < 0 || p > 65535) {
				throw new NumberFormatException();
			}
			return p;
		} catch (NumberFormatException e) {
			System.err.println("invalid port: " + raw);
			System.exit(2);
			return -1;
		}
	}
}

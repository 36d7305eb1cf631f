using System.Diagnostics;
using System.Globalization;

namespace Matrix.Homeserver.Observability;

/// <summary>
/// Around every request: starts its log context, and once answered counts it and times it by method, route template
/// (never the raw path, whose IDs would make a series per room or user) and status, and writes the access log line
/// when <c>logging.access_log</c> is on.
/// </summary>
public static partial class RequestObservation
{
    private const string Unmatched = "unmatched";

    public static void UseRequestObservation(this WebApplication app)
    {
        var metrics = app.Services.GetRequiredService<ServerMetrics>();
        var settings = app.Services.GetRequiredService<LogSettings>();
        var accessLog = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(LogSettings.AccessLogCategory);
        app.Use(async (context, next) =>
        {
            var started = Stopwatch.GetTimestamp();
            RequestLogContext.Begin(context.TraceIdentifier);
            var failed = false;
            try
            {
                await next(context);
            }
            catch
            {
                failed = true;
                throw;
            }
            finally
            {
                var elapsed = Stopwatch.GetElapsedTime(started);
                var method = MethodLabel(context.Request.Method);
                var route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? Unmatched;
                // An exception gets here only when the answer could not be written: the client went away (nginx's 499) or it broke off.
                var status = !failed ? context.Response.StatusCode : context.RequestAborted.IsCancellationRequested ? 499 : 500;
                metrics.HttpRequests.Inc(method, route, status.ToString(CultureInfo.InvariantCulture));
                metrics.HttpRequestDuration.Observe(elapsed.TotalSeconds, method, route);
                if (settings.AccessLog)
                    LogAccess(accessLog, method, route, status, Math.Round(elapsed.TotalMilliseconds, 1));
            }
        });
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "{Method} {Route} {Status} {DurationMs}ms")]
    private static partial void LogAccess(ILogger logger, string method, string route, int status, double durationMs);

    /// <summary>Any other method a client makes up counts as OTHER, so it cannot add series.</summary>
    private static string MethodLabel(string method) => method switch
    {
        "GET" or "PUT" or "POST" or "DELETE" or "HEAD" or "OPTIONS" or "PATCH" => method,
        _ => "OTHER",
    };
}

using System.Text.Json.Nodes;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// Synapse's <c>/health</c> (200 <c>OK</c> for load balancers and monitors, here only while the database answers) and
/// <c>/_synapse/admin/v1/server_version</c>, neither needing an access token, as in Synapse; and the background updates'
/// status (this server migrates its schema at start-up, so there are never any running).
/// </summary>
public sealed class ServerStatusEndpoints(AdminAuth auth, Database db, ILogger<ServerStatusEndpoints> logger) : IEndpoints
{
    private static readonly string Version = typeof(ServerStatusEndpoints).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapMethods("/health", ["GET", "HEAD"], HealthAsync);
        app.MapGet(AdminAuth.Prefix + "/v1/server_version", context => context.WriteJsonAsync(new JsonObject { ["server_version"] = Version }));
        app.MapGet(AdminAuth.Prefix + "/v1/background_updates/status", BackgroundUpdatesAsync);
    }

    private async Task BackgroundUpdatesAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        await context.WriteJsonAsync(new JsonObject { ["enabled"] = true, ["current_updates"] = new JsonObject() });
    }

    private async Task HealthAsync(HttpContext context)
    {
        var healthy = true;
        try
        {
            await db.ReadAsync(s => s.ExecuteScalarAsync<long>("SELECT 1"), context.RequestAborted);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("Health check: the database does not answer ({Error})", e.Message);
            healthy = false;
        }
        context.Response.StatusCode = healthy ? 200 : 503;
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(healthy ? "OK" : "Database unavailable", context.RequestAborted);
    }
}

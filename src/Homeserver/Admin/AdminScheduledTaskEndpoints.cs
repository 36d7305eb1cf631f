using System.Text.Json.Nodes;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// Synapse's <c>GET /_synapse/admin/v1/scheduled_tasks</c> over this server's background admin jobs (room deletions
/// as <c>shutdown_and_purge_room</c>, history purges as <c>purge_history</c>), filtered by <c>action_name</c>,
/// <c>resource_id</c>, <c>job_status</c> and <c>max_timestamp</c>.
/// </summary>
public sealed class AdminScheduledTaskEndpoints(AdminAuth auth, AdminTasks tasks) : IEndpoints
{
    private static readonly Dictionary<string, string> Actions = new() { ["delete_room"] = "shutdown_and_purge_room", ["purge_history"] = "purge_history" };

    public void Map(IEndpointRouteBuilder app) => app.MapGet(AdminAuth.Prefix + "/v1/scheduled_tasks", ListAsync);

    private async Task ListAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var action = context.Query("action_name");
        var resource = context.Query("resource_id");
        var status = context.Query("job_status");
        var maxTimestamp = context.Query("max_timestamp").Length == 0 ? (long?)null : AdminQuery.NonNegativeLong(context, "max_timestamp", 0);
        var listed = tasks.All()
            .Select(task => (Task: task, Action: Actions.GetValueOrDefault(task.Kind, task.Kind), Status: StatusOf(task)))
            .Where(t => action.Length == 0 || t.Action == action)
            .Where(t => resource.Length == 0 || t.Task.RoomId == resource)
            .Where(t => status.Length == 0 || t.Status == status)
            .Where(t => maxTimestamp is null || t.Task.StartedAt.ToUnixTimeMilliseconds() <= maxTimestamp)
            .Select(t => (JsonNode)new JsonObject
            {
                ["id"] = t.Task.Id,
                ["action"] = t.Action,
                ["status"] = t.Status,
                ["timestamp_ms"] = t.Task.StartedAt.ToUnixTimeMilliseconds(),
                ["resource_id"] = t.Task.RoomId,
                ["result"] = (t.Task.Result as RoomShutdownResult)?.ToJson(),
                ["error"] = t.Task.Error,
            });
        await context.WriteJsonAsync(new JsonObject { ["scheduled_tasks"] = new JsonArray(listed.ToArray()) });
    }

    /// <summary>Synapse's task statuses: every step of a running job is <c>active</c>.</summary>
    private static string StatusOf(AdminTask task) => task.Status is "complete" or "failed" ? task.Status : "active";
}

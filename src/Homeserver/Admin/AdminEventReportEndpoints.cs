using System.Text.Json.Nodes;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// Synapse's event report admin API (<c>/_synapse/admin/v1/event_reports</c>): list (newest first by default), show, delete.
/// Report IDs are this server's own (strings), where Synapse numbers them.
/// </summary>
public sealed class AdminEventReportEndpoints(AdminAuth auth, AdminEventReportStore store, Database db) : IEndpoints
{
    private const string Reports = AdminAuth.Prefix + "/v1/event_reports";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet(Reports, ListAsync);
        app.MapGet(Reports + "/{reportId}", GetAsync);
        app.MapDelete(Reports + "/{reportId}", DeleteAsync);
    }

    private async Task ListAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var (from, limit) = AdminQuery.Page(context);
        var filter = new AdminEventReportFilter(context.Query("user_id"), context.Query("room_id"), context.Query("event_sender_user_id"),
            Backwards: AdminQuery.OneOf(context, "dir", "b", ["f", "b"]) == "b");
        var (rows, total) = await db.ReadAsync(s => store.ListAsync(s, filter, from, limit), context.RequestAborted);
        var body = new JsonObject
        {
            ["event_reports"] = new JsonArray(rows.Select(row => (JsonNode)ToJson(row)).ToArray()),
            ["total"] = total,
        };
        if ((long)from + limit < total)
            body["next_token"] = from + rows.Count;
        await context.WriteJsonAsync(body);
    }

    private async Task GetAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var row = await db.ReadAsync(s => store.GetAsync(s, context.Route("reportId")), context.RequestAborted)
            ?? throw MatrixException.NotFound("Event report not found.");
        var body = ToJson(row);
        body["event_json"] = row.EventJson is null ? null : JsonNode.Parse(row.EventJson);
        await context.WriteJsonAsync(body);
    }

    private async Task DeleteAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        if (!await db.WriteAsync(s => store.DeleteAsync(s, context.Route("reportId")), context.RequestAborted))
            throw MatrixException.NotFound("Event report not found.");
        await context.WriteJsonAsync(new JsonObject());
    }

    private static JsonObject ToJson(AdminEventReportRow row) => new()
    {
        ["id"] = row.ReportId,
        ["received_ts"] = row.ReceivedTs,
        ["room_id"] = row.RoomId,
        ["name"] = row.NameEventJson is null ? null : AdminRoomDescription.StringField(AdminRoomDescription.ContentOf(row.NameEventJson), "name"),
        ["event_id"] = row.EventId,
        ["user_id"] = row.Reporter,
        ["reason"] = row.Reason,
        ["score"] = null,
        ["sender"] = row.Sender,
        ["canonical_alias"] = row.AliasEventJson is null ? null
            : AdminRoomDescription.StringField(AdminRoomDescription.ContentOf(row.AliasEventJson), "alias"),
    };
}

using System.Text.Json.Nodes;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>Synapse's media admin API, reading part: a user's uploads and every user's upload totals.</summary>
public sealed class AdminMediaEndpoints(AdminAuth auth, AdminMediaStore store, Database db, HomeserverConfig config) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet(AdminAuth.Prefix + "/v1/users/{userId}/media", UserMediaAsync);
        app.MapGet(AdminAuth.Prefix + "/v1/statistics/users/media", UsageAsync);
    }

    private async Task UserMediaAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var userId = (await auth.ExistingLocalUserAsync(context)).UserId;
        var (from, limit) = AdminQuery.Page(context);
        var orderBy = AdminQuery.OneOf(context, "order_by", "created_ts", AdminMediaStore.UserMediaSortColumns.Keys.ToList());
        // Newest first unless an order or direction is asked for (as Synapse).
        var backwards = context.Query("dir").Length == 0 && context.Query("order_by").Length == 0 || AdminQuery.Backwards(context);
        var (rows, total) = await db.ReadAsync(s => store.ListForUserAsync(s, config.ServerName, userId, from, limit, orderBy, backwards),
            context.RequestAborted);
        var body = new JsonObject
        {
            ["media"] = new JsonArray(rows.Select(row => (JsonNode)new JsonObject
            {
                ["created_ts"] = row.CreatedTs,
                ["last_access_ts"] = null,
                ["media_id"] = row.MediaId,
                ["media_length"] = row.SizeBytes,
                ["media_type"] = row.ContentType,
                ["quarantined_by"] = row.QuarantinedBy,
                ["safe_from_quarantine"] = row.SafeFromQuarantine != 0,
                ["upload_name"] = row.UploadName,
            }).ToArray()),
            ["total"] = total,
        };
        if ((long)from + limit < total)
            body["next_token"] = from + rows.Count;
        await context.WriteJsonAsync(body);
    }

    private async Task UsageAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var (from, limit) = AdminQuery.Page(context);
        var filter = new AdminMediaUsageFilter(
            FromTs: context.Query("from_ts").Length == 0 ? null : AdminQuery.NonNegativeLong(context, "from_ts", 0),
            UntilTs: context.Query("until_ts").Length == 0 ? null : AdminQuery.NonNegativeLong(context, "until_ts", 0),
            SearchTerm: context.Query("search_term"),
            OrderBy: AdminQuery.OneOf(context, "order_by", "user_id", AdminMediaStore.UsageSortColumns.Keys.ToList()),
            Backwards: AdminQuery.Backwards(context));
        var (rows, total) = await db.ReadAsync(s => store.UsageAsync(s, config.ServerName, filter, from, limit), context.RequestAborted);
        var body = new JsonObject
        {
            ["users"] = new JsonArray(rows.Select(row => (JsonNode)new JsonObject
            {
                ["displayname"] = AdminUserService.ProfileText(row.DisplaynameJson),
                ["media_count"] = row.MediaCount,
                ["media_length"] = row.MediaLength,
                ["user_id"] = row.UserId,
            }).ToArray()),
            ["total"] = total,
        };
        if ((long)from + limit < total)
            body["next_token"] = from + rows.Count;
        await context.WriteJsonAsync(body);
    }
}

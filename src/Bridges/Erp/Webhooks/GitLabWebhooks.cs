using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Matrix.Bridges.Erp;

/// <summary>
/// GitLab: <c>X-Gitlab-Token</c> carries the secret itself (compared in constant time), <c>X-Gitlab-Event</c> names
/// the event and <c>X-Gitlab-Event-UUID</c> identifies the delivery. Posts pushes, merge requests opened, closed,
/// merged and reopened, issues opened, closed and reopened, and comments.
/// </summary>
public sealed class GitLabWebhooks : WebhookProvider
{
    public override string DeliveryIdHeader => "X-Gitlab-Event-UUID";

    public override WebhookRejection? Authenticate(string secret, IHeaderDictionary headers, byte[] body, out WebhookDelivery delivery)
    {
        var id = Header(headers, DeliveryIdHeader);
        delivery = new WebhookDelivery(id ?? "", Header(headers, "X-Gitlab-Event") ?? "", null);
        var token = Header(headers, "X-Gitlab-Token");
        if (token is null || !CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(token)), SHA256.HashData(Encoding.UTF8.GetBytes(secret))))
            return new WebhookRejection(401, "bad or missing X-Gitlab-Token");
        return CheckDeliveryId(id, DeliveryIdHeader) ?? (delivery.Event.Length == 0 ? new WebhookRejection(400, "X-Gitlab-Event is required") : null);
    }

    public override RenderedMessage? Render(WebhookDelivery delivery, JsonObject payload)
    {
        var project = Str(payload, "project.path_with_namespace");
        var actor = Str(payload, "user.username") is { Length: > 0 } username ? username : Str(payload, "user_username");
        var action = Str(payload, "object_attributes.action");
        switch (delivery.Event)
        {
            case "Push Hook":
            case "Tag Push Hook":
                var commits = payload["commits"] as JsonArray ?? [];
                var count = payload["total_commits_count"] is JsonValue total && total.TryGetValue<int>(out var n) ? n : commits.Count;
                var branch = Str(payload, "ref").Replace("refs/heads/", "").Replace("refs/tags/", "tag ");
                var lines = string.Join("\n", commits.Take(5).Select(c => $"{Str(c, "id")[..Math.Min(8, Str(c, "id").Length)]} {Headline(Str(c, "message"))}"));
                return Say(Str(payload, "user_username") is { Length: > 0 } pusher ? pusher : Str(payload, "user_name"), "pushed",
                    $"{Count(count, "commit")} to {project} {branch}", Str(payload, "project.web_url"), lines);
            case "Merge Request Hook" when Verb(action) is { } verb:
                return Say(actor, $"{verb} merge request", $"!{Str(payload, "object_attributes.iid")} {Str(payload, "object_attributes.title")} in {project}",
                    Str(payload, "object_attributes.url"));
            case "Issue Hook" when Verb(action) is { } verb and not "merged":
                return Say(actor, $"{verb} issue", $"#{Str(payload, "object_attributes.iid")} {Str(payload, "object_attributes.title")} in {project}",
                    Str(payload, "object_attributes.url"));
            case "Note Hook":
                var (on, title) = Str(payload, "object_attributes.noteable_type") switch
                {
                    "MergeRequest" => ("merge request", $"!{Str(payload, "merge_request.iid")} {Str(payload, "merge_request.title")}"),
                    "Issue" => ("issue", $"#{Str(payload, "issue.iid")} {Str(payload, "issue.title")}"),
                    "Commit" => ("commit", Str(payload, "commit.id")[..Math.Min(8, Str(payload, "commit.id").Length)]),
                    var other => (other.ToLowerInvariant(), ""),
                };
                return Say(actor, $"commented on {on}", $"{title} in {project}", Str(payload, "object_attributes.url"), Str(payload, "object_attributes.note"));
            default:
                return null;
        }
    }

    private static string? Verb(string action) => action switch
    {
        "open" => "opened",
        "close" => "closed",
        "reopen" => "reopened",
        "merge" => "merged",
        _ => null,
    };
}

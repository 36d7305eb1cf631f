using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Matrix.Bridges.Erp;

/// <summary>
/// Jira (Cloud admin webhooks with a secret): <c>X-Hub-Signature: sha256=&lt;hex HMAC-SHA256(secret, body)&gt;</c>,
/// the delivery in <c>X-Atlassian-Webhook-Identifier</c> and the event in the body's <c>webhookEvent</c>. Posts
/// issues created and updated (with the changed fields) and comments created.
/// </summary>
public sealed class JiraWebhooks : WebhookProvider
{
    public override string DeliveryIdHeader => "X-Atlassian-Webhook-Identifier";

    public override WebhookRejection? Authenticate(string secret, IHeaderDictionary headers, byte[] body, out WebhookDelivery delivery)
    {
        var id = Header(headers, DeliveryIdHeader);
        delivery = new WebhookDelivery(id ?? "", "", null);
        if (!HmacMatches(secret, body, Header(headers, "X-Hub-Signature")))
            return new WebhookRejection(401, "bad or missing X-Hub-Signature");
        return CheckDeliveryId(id, DeliveryIdHeader);
    }

    public override RenderedMessage? Render(WebhookDelivery delivery, JsonObject payload)
    {
        var key = Str(payload, "issue.key");
        var what = $"{key} {Str(payload, "issue.fields.summary")}";
        var url = BrowseUrl(Str(payload, "issue.self"), key);
        switch (Str(payload, "webhookEvent"))
        {
            case "jira:issue_created":
                return Say(Str(payload, "user.displayName"), "created", what, url);
            case "jira:issue_updated":
                var changes = (payload["changelog"]?["items"] as JsonArray ?? []).Select(i => $"{Str(i, "field")}: {Str(i, "fromString")} → {Str(i, "toString")}").ToList();
                // An update without changed fields is the echo of a comment, which comment_created already posts.
                return changes.Count == 0 ? null : Say(Str(payload, "user.displayName"), "updated", what, url, string.Join("\n", changes));
            case "comment_created":
                return Say(Str(payload, "comment.author.displayName"), "commented on", what, url, Str(payload, "comment.body"));
            default:
                return null;
        }
    }

    /// <summary>The issue's page: the site of its REST URL (<c>issue.self</c>) and <c>/browse/{key}</c>.</summary>
    private static string BrowseUrl(string self, string key) =>
        Uri.TryCreate(self, UriKind.Absolute, out var api) && key.Length > 0 ? $"{api.GetLeftPart(UriPartial.Authority)}/browse/{key}" : "";
}

using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Matrix.Bridges.Erp;

/// <summary>
/// GitHub: <c>X-Hub-Signature-256: sha256=&lt;hex HMAC-SHA256(secret, body)&gt;</c>, <c>X-GitHub-Event</c> and
/// <c>X-GitHub-Delivery</c> (a redelivery keeps its ID, so it is refused as already received). Posts pushes, pull
/// requests opened, closed, merged and reopened, issues opened, closed and reopened, and new comments on either.
/// </summary>
public sealed class GitHubWebhooks : WebhookProvider
{
    public override string DeliveryIdHeader => "X-GitHub-Delivery";

    public override WebhookRejection? Authenticate(string secret, IHeaderDictionary headers, byte[] body, out WebhookDelivery delivery)
    {
        var id = Header(headers, DeliveryIdHeader);
        delivery = new WebhookDelivery(id ?? "", Header(headers, "X-GitHub-Event") ?? "", null);
        if (!HmacMatches(secret, body, Header(headers, "X-Hub-Signature-256")))
            return new WebhookRejection(401, "bad or missing X-Hub-Signature-256");
        return CheckDeliveryId(id, DeliveryIdHeader) ?? (delivery.Event.Length == 0 ? new WebhookRejection(400, "X-GitHub-Event is required") : null);
    }

    public override RenderedMessage? Render(WebhookDelivery delivery, JsonObject payload)
    {
        var repo = Str(payload, "repository.full_name");
        var actor = Str(payload, "sender.login");
        var action = Str(payload, "action");
        switch (delivery.Event)
        {
            case "push":
                var commits = payload["commits"] as JsonArray ?? [];
                var branch = Str(payload, "ref").Replace("refs/heads/", "").Replace("refs/tags/", "tag ");
                var lines = string.Join("\n", commits.Take(5).Select(c => $"{Str(c, "id")[..Math.Min(7, Str(c, "id").Length)]} {Headline(Str(c, "message"))}"));
                return Say(Str(payload, "pusher.name") is { Length: > 0 } pusher ? pusher : actor, "pushed",
                    $"{Count(commits.Count, "commit")} to {repo} {branch}", Str(payload, "compare"), lines);
            case "pull_request" when action is "opened" or "closed" or "reopened":
                var verb = action == "closed" && Bool(payload, "pull_request.merged") ? "merged" : action;
                return Say(actor, $"{verb} pull request", $"#{Str(payload, "pull_request.number")} {Str(payload, "pull_request.title")} in {repo}",
                    Str(payload, "pull_request.html_url"));
            case "issues" when action is "opened" or "closed" or "reopened":
                return Say(actor, $"{action} issue", $"#{Str(payload, "issue.number")} {Str(payload, "issue.title")} in {repo}", Str(payload, "issue.html_url"));
            case "issue_comment" when action == "created":
                var kind = payload["issue"]?["pull_request"] is not null ? "pull request" : "issue";
                return Say(actor, $"commented on {kind}", $"#{Str(payload, "issue.number")} {Str(payload, "issue.title")} in {repo}",
                    Str(payload, "comment.html_url"), Str(payload, "comment.body"));
            case "pull_request_review_comment" when action == "created":
                return Say(actor, "commented on pull request", $"#{Str(payload, "pull_request.number")} {Str(payload, "pull_request.title")} in {repo}",
                    Str(payload, "comment.html_url"), Str(payload, "comment.body"));
            default:
                return null;
        }
    }
}

using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Matrix.Bridges.Erp;

/// <summary>
/// Our own scheme for ERP systems: <c>X-Erp-Signature: sha256=&lt;hex HMAC-SHA256(secret, "{timestamp}.{delivery
/// id}.{body}")&gt;</c>, <c>X-Erp-Timestamp</c> (Unix seconds, checked against the replay window) and
/// <c>X-Erp-Delivery</c>. Its payloads are the ERP's own, so its hooks always have a template.
/// </summary>
public sealed class ErpWebhooks : WebhookProvider
{
    public const string SignatureHeader = "X-Erp-Signature";
    public const string TimestampHeader = "X-Erp-Timestamp";
    public const string DeliveryHeader = "X-Erp-Delivery";

    public override string DeliveryIdHeader => DeliveryHeader;

    public override bool NeedsTemplate => true;

    /// <summary>The bytes a sender signs for <see cref="SignatureHeader"/>.</summary>
    public static byte[] SignedData(string timestamp, string deliveryId, ReadOnlySpan<byte> body)
    {
        var prefix = Encoding.UTF8.GetBytes($"{timestamp}.{deliveryId}.");
        var data = new byte[prefix.Length + body.Length];
        prefix.CopyTo(data, 0);
        body.CopyTo(data.AsSpan(prefix.Length));
        return data;
    }

    public override WebhookRejection? Authenticate(string secret, IHeaderDictionary headers, byte[] body, out WebhookDelivery delivery)
    {
        var (signature, timestamp, id) = (Header(headers, SignatureHeader), Header(headers, TimestampHeader), Header(headers, DeliveryHeader));
        delivery = new WebhookDelivery(id ?? "", "", null);
        if (signature is null || timestamp is null || id is null)
            return new WebhookRejection(400, $"{SignatureHeader}, {TimestampHeader} and {DeliveryHeader} are required");
        if (CheckDeliveryId(id, DeliveryHeader) is { } bad)
            return bad;
        if (!HmacMatches(secret, SignedData(timestamp, id, body), signature))
            return new WebhookRejection(401, "bad signature");
        if (!long.TryParse(timestamp, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
            return new WebhookRejection(401, $"{TimestampHeader} is not Unix seconds");
        delivery = delivery with { SignedAt = DateTimeOffset.FromUnixTimeSeconds(Math.Min(seconds, 253402300799)) };
        return null;
    }

    public override RenderedMessage? Render(WebhookDelivery delivery, JsonObject payload) => null;
}

using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.RoomDirectory;

/// <summary>
/// A network bridged by an application service, whose rooms the service publishes in a list of its own (spec:
/// <c>PUT /directory/list/appservice/{networkId}/{roomId}</c>). Its instance ID, <c>{appservice}|{network}</c>, is the
/// form Synapse gives the protocol instances and reads back from <c>third_party_instance_id</c>.
/// </summary>
public sealed record AppServiceNetwork(string AppServiceId, string NetworkId)
{
    public string InstanceId => $"{AppServiceId}|{NetworkId}";

    public static AppServiceNetwork Parse(string instanceId) =>
        instanceId.Split('|') is [var appServiceId, var networkId] ? new(appServiceId, networkId)
        : throw MatrixException.InvalidParam("Invalid third_party_instance_id.");
}

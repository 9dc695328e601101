using EdgeBlock.Daemon.Management;

namespace EdgeBlock.Daemon.Tests;

public class QosValidatorTests
{
    private static List<string> Validate(QosSpec qos) => ConfigValidator.Validate(new DesiredState { Qos = qos }, Path.GetTempPath());

    [Fact]
    public void Validate_ValidQos_NoErrors()
    {
        Assert.Empty(Validate(new QosSpec
        {
            Volumes = [new VolumeQosSpec { Volume = "tank/a", Iops = 1000, BurstIops = 50, BytesPerSecond = 10 << 20, Weight = 4 }],
            Groups = [new GroupQosSpec { Group = "tank/acme", BytesPerSecond = 1 << 30 }],
        }));
        Assert.Empty(ConfigValidator.Validate(new DesiredState(), Path.GetTempPath())); // no qos at all
    }

    [Fact]
    public void Validate_BadQos_NamesFieldValueAndWhy()
    {
        var errors = Validate(new QosSpec
        {
            Volumes =
            [
                new VolumeQosSpec { Volume = "tank/a", Iops = -1 },
                new VolumeQosSpec { Volume = "tank/a", Iops = 1_000_000_000 },
                new VolumeQosSpec { Volume = "no-slash", Weight = 0 },
                new VolumeQosSpec { Volume = "tank/b", BurstBytes = 4096 },
                new VolumeQosSpec { Volume = "tank/c" },
                null!,
            ],
            Groups = [new GroupQosSpec { Group = "tank/g", BytesPerSecond = 2L << 40 }],
        });

        Assert.Contains(errors, e => e.StartsWith("qos.volumes[0].iops: -1 is out of range"));
        Assert.Contains(errors, e => e.StartsWith("qos.volumes[1].volume: 'tank/a' is listed twice"));
        Assert.Contains(errors, e => e.StartsWith("qos.volumes[1].iops: 1000000000 is out of range"));
        Assert.Contains(errors, e => e.StartsWith("qos.volumes[2].volume: 'no-slash' is not POOL/VOLUME"));
        Assert.Contains(errors, e => e.StartsWith("qos.volumes[2].weight: 0 is out of range (1..10000)"));
        Assert.Contains(errors, e => e.StartsWith("qos.volumes[3].burst_bytes: a burst needs its rate"));
        Assert.Contains(errors, e => e.StartsWith("qos.volumes[4]: sets nothing"));
        Assert.Contains(errors, e => e.StartsWith("qos.volumes[5]: is null"));
        Assert.Contains(errors, e => e.StartsWith("qos.groups[0].bytes_per_second: 2199023255552 is out of range"));
    }

    [Fact]
    public void CheckNames_UnknownVolumeOrGroup_RefusedNamingTheField()
    {
        var qos = new QosSpec
        {
            Volumes = [new VolumeQosSpec { Volume = "tank/a", Iops = 1 }, new VolumeQosSpec { Volume = "tank/ghost", Iops = 1 }],
            Groups = [new GroupQosSpec { Group = "tank/nobody", Iops = 1 }],
        };
        var errors = new List<string>();

        QosValidator.CheckNames(qos, (_, v) => v == "a" ? null : $"volume tank/{v} does not exist", (_, _) => "no such group", errors);

        Assert.Equal(["qos.volumes[1].volume: 'tank/ghost': volume tank/ghost does not exist", "qos.groups[0].group: 'tank/nobody': no such group"], errors);
    }
}

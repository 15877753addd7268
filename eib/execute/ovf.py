"""`<outversion>.ovf.zip`: the image as a virtual machine VirtualBox and VMware import.

The legacy builder's `vm_image` output, kept for the sites that publish it:
a zip of an OVF descriptor, a streamOptimized VMDK of the raw image grown by
10 GiB of free space, and an OVF manifest (`.mf`) with the sha256 of both.
Its `.size` holds the three files' total size, as the legacy one did.  The
descriptor's UUIDs derive from the image's sha256, so one image always gives
one zip.
"""

from __future__ import annotations

import os
from pathlib import Path
from xml.etree import ElementTree
from xml.etree.ElementTree import Element, SubElement

from eib.digest import sha256_file
from eib.execute.disk_layout import derived_uuid
from eib.execute.outputs import make_zip
from eib.tools.run import run

EXTRA_STORAGE = 10 << 30  # free space of the virtual disk, as the legacy VMs had
MEMORY_MB = 2048
CPUS = 1
NS = {
    "ovf": "http://schemas.dmtf.org/ovf/envelope/1",
    "rasd": "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
            "CIM_ResourceAllocationSettingData",
    "vssd": "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData",
    "vbox": "http://www.virtualbox.org/ovf/machine",
}
VMDK_FORMAT = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"


def make_ovf_zip(raw: Path, raw_sha256: str, name: str, work_dir: Path, dest: Path,
                 epoch: int | None) -> int:
    """Write `dest` from the raw image; returns the uncompressed size of its files.

    The raw image is grown for the conversion and cut back to its size after,
    byte for byte as it was (the added tail is a hole).
    """
    tree = work_dir / "ovf"
    tree.mkdir(parents=True, exist_ok=True)
    vmdk = tree / f"{name}.vmdk"
    size = raw.stat().st_size
    capacity = size + EXTRA_STORAGE
    try:
        os.truncate(raw, capacity)
        run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized",
             raw, vmdk])
    finally:
        os.truncate(raw, size)
    ovf = tree / f"{name}.ovf"
    ovf.write_bytes(descriptor(name, vmdk.stat().st_size, capacity, raw_sha256))
    manifest = tree / f"{name}.mf"
    manifest.write_text("".join(f"SHA256 ({p.name}) = {sha256_file(p)}\n" for p in (ovf, vmdk)))
    total = sum(p.stat().st_size for p in (ovf, vmdk, manifest))
    make_zip(tree, dest, epoch)
    for path in (ovf, vmdk, manifest):
        path.unlink()
    return total


def descriptor(name: str, vmdk_size: int, capacity: int, seed: str) -> bytes:
    """The OVF 1.x envelope: one SATA disk, one NAT network card, CPUs and memory."""
    for prefix, uri in NS.items():
        ElementTree.register_namespace(prefix, uri)

    def q(prefix: str, tag: str) -> str:
        return f"{{{NS[prefix]}}}{tag}"

    envelope = Element(q("ovf", "Envelope"), {q("ovf", "version"): "1.0"})
    refs = SubElement(envelope, q("ovf", "References"))
    SubElement(refs, q("ovf", "File"), {q("ovf", "href"): f"{name}.vmdk",
                                        q("ovf", "id"): "file0", q("ovf", "size"): str(vmdk_size)})
    disks = SubElement(envelope, q("ovf", "DiskSection"))
    SubElement(disks, q("ovf", "Info")).text = "List of the virtual disks"
    SubElement(disks, q("ovf", "Disk"), {
        q("ovf", "diskId"): "vmdisk0", q("ovf", "capacity"): str(capacity),
        q("ovf", "fileRef"): "file0", q("ovf", "format"): VMDK_FORMAT,
        q("vbox", "uuid"): derived_uuid(seed, "ovf-disk")})
    networks = SubElement(envelope, q("ovf", "NetworkSection"))
    SubElement(networks, q("ovf", "Info")).text = "Logical networks used in the package"
    network = SubElement(networks, q("ovf", "Network"), {q("ovf", "name"): "NAT"})
    SubElement(network, q("ovf", "Description")).text = "NAT network used by this VM"
    system = SubElement(envelope, q("ovf", "VirtualSystem"), {q("ovf", "id"): name})
    SubElement(system, q("ovf", "Info")).text = "A virtual machine"
    SubElement(system, q("ovf", "Name")).text = name
    os_section = SubElement(system, q("ovf", "OperatingSystemSection"), {q("ovf", "id"): "101"})
    SubElement(os_section, q("ovf", "Info")).text = "The OS contained in this VM"
    SubElement(os_section, q("vbox", "OSType")).text = "Linux_64"
    hardware = SubElement(system, q("ovf", "VirtualHardwareSection"))
    SubElement(hardware, q("ovf", "Info")).text = f"{CPUS} CPU, {MEMORY_MB} MB of memory"
    vssd = SubElement(hardware, q("ovf", "System"))
    SubElement(vssd, q("vssd", "ElementName")).text = "Virtual Hardware Family"
    SubElement(vssd, q("vssd", "InstanceID")).text = "0"
    SubElement(vssd, q("vssd", "VirtualSystemIdentifier")).text = name
    SubElement(vssd, q("vssd", "VirtualSystemType")).text = "virtualbox-2.2"
    items = [
        {"Caption": f"{CPUS} virtual CPU", "InstanceID": "1", "ResourceType": "3",
         "VirtualQuantity": str(CPUS)},
        {"AllocationUnits": "MegaBytes", "Caption": f"{MEMORY_MB} MB of memory",
         "InstanceID": "2", "ResourceType": "4", "VirtualQuantity": str(MEMORY_MB)},
        {"Address": "0", "Caption": "sataController0", "InstanceID": "3",
         "ResourceSubType": "AHCI", "ResourceType": "20"},
        {"AddressOnParent": "0", "Caption": "disk1", "HostResource": "/disk/vmdisk0",
         "InstanceID": "4", "Parent": "3", "ResourceType": "17"},
        {"AutomaticAllocation": "true", "Caption": "Ethernet adapter on 'NAT'",
         "Connection": "NAT", "InstanceID": "5", "ResourceSubType": "E1000",
         "ResourceType": "10"},
    ]
    for fields in items:
        item = SubElement(hardware, q("ovf", "Item"))
        for key in sorted(fields):
            SubElement(item, q("rasd", key)).text = fields[key]
    ElementTree.indent(envelope, space="  ")
    text: bytes = ElementTree.tostring(envelope, encoding="utf-8", xml_declaration=True)
    return text + b"\n"

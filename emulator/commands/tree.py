"""`dm-emulator tree export|import`: management trees as TNDS XML, in and out of workspaces."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emulator.device.build import device_tree, template_tree
from emulator.device.profile import find_profile
from emulator.errors import EmulatorError, FileFormatError
from emulator.store import DeviceRecord, Workspace
from emulator.tree.tnds import export_tnds, import_tnds

DEMO_SERVER = "http://127.0.0.1:8700"


def export(args: argparse.Namespace) -> int:
    """The whole tree of device 0 of a profile, as a TNDS document."""
    profile = find_profile(args.profile)
    _, tree = device_tree(profile, 0, server=DEMO_SERVER)
    data = export_tnds(tree, ".", pretty=True, mask_secrets=not getattr(args, "reveal_secrets", False))
    document = b'<?xml version="1.0" encoding="UTF-8"?>\n' + data
    if args.out:
        Path(args.out).write_bytes(document)
        print(f"wrote {len(tree)} nodes of {profile.name} to {args.out}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(document)
        sys.stdout.buffer.flush()
    return 0


def import_tree(args: argparse.Namespace) -> int:
    """Merge a TNDS file into a workspace device (a new one from ``--profile`` unless ``--device``)."""
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileFormatError(str(path), None, f"cannot read: {exc.strerror or exc}") from None
    with Workspace.open(args.workspace) as ws:
        device_id = getattr(args, "device", None)
        if device_id:
            record = ws.device(device_id)
            if record is None:
                known = ", ".join(r.id for r in ws.list_devices()) or "none"
                raise EmulatorError(f"workspace {args.workspace} has no device {device_id!r} (devices: {known})")
            profile = find_profile(record.profile)
            tree = ws.load_tree(record.id, template=template_tree(profile)) if ws.has_tree(record.id) \
                else device_tree(profile, record.identity_index, server=DEMO_SERVER)[1]
        else:
            profile = find_profile(getattr(args, "profile", None) or "smartphone")
            index = 1 + max((r.identity_index for r in ws.list_devices() if r.profile == profile.name), default=-1)
            identity, tree = device_tree(profile, index, server=DEMO_SERVER)
            record = DeviceRecord(id=identity.dev_id, profile=profile.name, identity_index=index,
                                  protocol=",".join(profile.protocols), state="idle", data={})
        changed = import_tnds(tree, data, by=None, replace=True, source=str(path))
        imported_id = tree.value("./DevInfo/DevId") or tree.value("./DM2/DevInfo/DevID")
        if not device_id and isinstance(imported_id, str) and imported_id and ws.device(imported_id) is None:
            record = DeviceRecord(id=imported_id, profile=record.profile, identity_index=record.identity_index,
                                  protocol=record.protocol, state=record.state, data=record.data)
        with ws.transaction():
            ws.save_device(record)
            ws.save_tree(record.id, tree)
    print(f"imported {len(changed)} nodes from {path} into device {record.id} ({len(tree)} nodes) "
          f"in {ws.path}")
    return 0

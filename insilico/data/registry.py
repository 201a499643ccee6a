"""The datasets insilico knows: folder under ``INSILICO_DATA``, description, citation, files and sha256.

Each entry: ``"files"`` maps a file's path inside the dataset folder to its sha256; ``"sizes"`` maps the same
paths to their size in bytes (:func:`insilico.data.fetch.fetch` refuses a download that would exceed it); an
optional ``"url"`` is the base URL the files can be fetched from.
"""
from __future__ import annotations

DATASETS: dict[str, dict] = {
    "allen_boc_v1_natural_scenes_31px": {
        "description": "mouse V1 (Allen Brain Observatory): 212 cells x 118 natural scenes at 31x31 px",
        "citation": "de Vries et al. 2020",
        "files": {
            "Allen_test_input.npy": "737078f8c73a67eba504b62a11657a3bb85a838af71a47f85acb35b319b2215e",
            "Allen_test_output.npy": "4a761c48fc020acac16f993199d82c6243bcbde846878ea6fd488832bae5cb33",
            "Allen_train_input.npy": "1e688234d71453e655dd8d3b1122c149986fd56a79c8bb86d36d1224443a72e4",
            "Allen_train_output.npy": "d51c2606fc7df9f4caa747fdb10f9da7ef46786009167a5a66a3ca4290aeabc8",
            "all_input_scenes_118_961.npy": "0d40bbf7490200a0f833c8ca942773c60e72959c32a9810baeae73972ac73ea2",
        },
        "sizes": {
            "Allen_test_input.npy": 138464,
            "Allen_test_output.npy": 30608,
            "Allen_train_input.npy": 768880,
            "Allen_train_output.npy": 169680,
            "all_input_scenes_118_961.npy": 907264,
        },
    },
    "cichy2014_fmri_rdms_92images": {
        "description": "EVC and IT fMRI RDMs, 15 subjects, the 92 images",
        "citation": "Cichy, Pantazis & Oliva 2014",
        "files": {
            "target_fmri_92.mat": "57f064c7ebc5e6de1c70898166090f5c7b6ffdcfb5b13cb897c6d81a09207e47",
        },
        "sizes": {
            "target_fmri_92.mat": 1876161,
        },
    },
    "cifar10_jpeg": {
        "description": "CIFAR-10 as 32x32 JPEGs: 50,000 train, 10,000 test",
        "citation": "Krizhevsky 2009",
        "files": {
            "cifar10_test_10000_jpg.tar.gz": "6cfd4ed5c3e1199e165d8ac0383a46dbf96d6cd7337c90242073a9f8b41660ba",
            "cifar10_train_50000_jpg.tar.gz": "c3e24bbd8f1b26757c204a57ca56a86baf62af2920c66d05558120cd5fd69249",
        },
        "sizes": {
            "cifar10_test_10000_jpg.tar.gz": 3204753,
            "cifar10_train_50000_jpg.tar.gz": 16010367,
        },
    },
    "cowley2023_v4": {
        "description": "macaque V4 array responses to 112x112 natural images (4 sessions)",
        "citation": "Cowley et al. 2023",
        "files": {
            "images/images_190923.zip": "e99a4df1c7476bdc4d565ff4408bc421976ecc3a22c41af6bfd0cfbddb508c0c",
            "images/images_201025.zip": "3abb63679107665eab7220bdeaf7863832a1df943bf3d7792501f5082a55b2e8",
            "images/images_210225.zip": "79bfb1066949a7f7bbd3c632ab420c2230b966b80cade76593d8745aea49b7f6",
            "images/images_210325.zip": "992774eca3508a2ad01accb1a31f5f3e3d90248c49f4eec314f2a915a263e454",
            "responses_raw/responses_210325.npy": "4008dbbf31a47d9b1b8d8da609f4a7a3433c7071f0e45c611c220b217dd75b76",
            "responses_repeat_averaged/responses_190923.npy":
                "741672d36541ce39930c8a3b5bd1cfd33c187aa47b1549c9c5569bc21aa97a28",
            "responses_repeat_averaged/responses_201025.npy":
                "f729f3dc0d29aa38bd380c0da9e39aba916f9e2580949929b65d1714e7217a8a",
            "responses_repeat_averaged/responses_210225.npy":
                "853f196247504fa2526b507f56ee5237711ed166f295f7cb23ec5441a7bf789b",
            "responses_repeat_averaged/responses_210325.npy":
                "555e67037182611969ab90da291dcc39601de4411f651a64ad60e90572cf59d3",
        },
        "sizes": {
            "images/images_190923.zip": 4024034,
            "images/images_201025.zip": 4131376,
            "images/images_210225.zip": 4137526,
            "images/images_210325.zip": 1841475,
            "responses_raw/responses_210325.npy": 2560128,
            "responses_repeat_averaged/responses_190923.npy": 316928,
            "responses_repeat_averaged/responses_201025.npy": 854528,
            "responses_repeat_averaged/responses_210225.npy": 528128,
            "responses_repeat_averaged/responses_210325.npy": 256128,
        },
    },
    "goris2015_v1v2_gratings": {
        "description": "trial-level spikes of V1/V2 units to gratings: SF tuning, mixtures",
        "citation": "Goris et al. 2015",
        "files": {
            "dataList.mat": "1c6d8f385a413b747f6fe5d53f76b41ff6696b0215cbfa2d74ed8c9a15719111",
            "m620r12_sf.mat": "85f3185c5970f37c1ae3bfb5e65446c06c162bd423b6b7796601c3bd9fffd91c",
            "m620r12_tp.mat": "9b24992ec530599ef763b1d988078152555b42a8f1c7b25563d1552d45bbdc86",
            "m620r35_sf.mat": "30ead718cf2857f340427ee5809bcb4e7ef4c19cd8d2a3788f25100328235c99",
            "m620r35_tp.mat": "933d2ff509ef59bb0993e6ced3637d08556030e8d1960146b49abf39f9b23baa",
            "m624l54_sf.mat": "7c22c1bc648a9d9389e4aa36a245ba91ebe7f728e87e9698b6828d0eaa66e92d",
            "m624l54_tp.mat": "634f6a297601eada409f695a73e59781fa594376272d3582aeedeeb3407d8568",
            "m625r58_sf.mat": "7b359b2843dc76f015cd77a7790f0807cdb6dfc9db3ed7a322799017a0eebc6c",
            "m625r58_tp.mat": "2fbba90ca4bcca1ed7e6700275a31554f037bef214e193df08776a44c7dddda7",
            "m625r62_sf.mat": "90dc0b8f2daa7292f343f12203e6d60adcf8431cf0a2d9f9f3f0f3c66e588587",
            "m625r62_tp.mat": "1dfe47e3daadf3fa9ad6f04c38fe9db6c636534fef9fe1a0f2c19beb6a632338",
            "m627r58_sf.mat": "4d42c2f19f313e15b21a599004eb21b2ed0ef7be95e0914a076ba3a688c66aed",
            "m627r58_tp.mat": "098853c6fc8aa612659b93ca8f8d489d382059c4867aeb9f64a661baa35c392f",
        },
        "sizes": {
            "dataList.mat": 2311,
            "m620r12_sf.mat": 4238,
            "m620r12_tp.mat": 1423122,
            "m620r35_sf.mat": 13996,
            "m620r35_tp.mat": 1653705,
            "m624l54_sf.mat": 10611,
            "m624l54_tp.mat": 1515016,
            "m625r58_sf.mat": 4059,
            "m625r58_tp.mat": 1527802,
            "m625r62_sf.mat": 2423,
            "m625r62_tp.mat": 1172160,
            "m627r58_sf.mat": 17114,
            "m627r58_tp.mat": 1615988,
        },
    },
    "kriegeskorte2008_92images": {
        "description": "92 object photos; human and monkey IT RDMs; model and behavioural RDMs",
        "citation": "Kriegeskorte et al. 2008",
        "files": {
            "92_behavRDMs.mat": "7a8e118c144c3840adeeeef6ea0706a0be2b3e80df719af15fbb56fc62562f5f",
            "92_brainRDMs.mat": "1743f90a15e895798a94318649e80e1123a7e5943a1703fa1dd7c31ea5780b7c",
            "92_modelRDMs.mat": "e1d2b58bb2f9508bc13da4c81b94d1ab07823b25ed30b9563bd9d6d730c2a00a",
            "Kriegeskorte_Neuron2008_supplementalData.mat":
                "06f21214399a5d43dc264eed19a7f4b8daf11c8622a59eec3e106064ce5e3504",
            "rdm92_V1model.mat": "4efc3291a5c85943c5f6ea3d05daedbf232b6dbd263104e8e5b5de38be6be8b1",
        },
        "sizes": {
            "92_behavRDMs.mat": 982719,
            "92_brainRDMs.mat": 224663,
            "92_modelRDMs.mat": 333004,
            "Kriegeskorte_Neuron2008_supplementalData.mat": 3603779,
            "rdm92_V1model.mat": 354019,
        },
    },
    "mnist_test": {
        "description": "the MNIST test set (10,000 digits, IDX)",
        "citation": "LeCun et al. 1998",
        "files": {
            "t10k-images-idx3-ubyte.gz": "ba05d2d6e06f59dd97d2d5378250478bb5c9b64296a5c2681700569121e3a2d7",
            "t10k-labels-idx1-ubyte.gz": "94088eab8a64f51a9b34cc9716f54b6548ef8b2fd16ada6d1575091b933dbf4b",
        },
        "sizes": {
            "t10k-images-idx3-ubyte.gz": 1648877,
            "t10k-labels-idx1-ubyte.gz": 4542,
        },
    },
    "tang2018_v1_pattern_stimuli": {
        "description": "9,500 binary pattern stimuli and 4 V1 neurons' responses",
        "citation": "Tang et al. 2018",
        "files": {
            "neurons/neu255.npy": "da6191a8179b6e97e08cb7a94d4d311c57e491bfb12c92ce8c5973c8810bc2bf",
            "neurons/neu381.npy": "05836ccc35af679356da438c13eb3d1ee25d1a2d8f69405dd6d1b1bec024e19a",
            "neurons/neu504.npy": "3f9c5ee7ec7a963fbc6e38091f5c1acc83f4a7921db51439b5dae79a40964316",
            "neurons/neu75.npy": "cda4d341bcd2a3f3e423912807fec98f68becc5af438bb9f3021193b2abb30ca",
            "pattern_stimuli_png.tar.gz": "d5e03d1458381da29cae1782893c8f78cf8a5a7deee374b425f671b3c17970f3",
        },
        "sizes": {
            "neurons/neu255.npy": 76128,
            "neurons/neu381.npy": 76128,
            "neurons/neu504.npy": 76128,
            "neurons/neu75.npy": 76128,
            "pattern_stimuli_png.tar.gz": 2084054,
        },
    },
    "vanhateren_single_image": {
        "description": "one calibrated van Hateren natural image (1024x1536, uint16)",
        "citation": "van Hateren & van der Schaaf 1998",
        "files": {
            "image.tiff.gz": "aa4dd317f750f4806a2dc787938f83c00f8b1db5cd566be18f2e6e1309b78e07",
        },
        "sizes": {
            "image.tiff.gz": 2441089,
        },
    },
}


def verify(name: str, root=None) -> dict[str, str]:
    """Check a dataset's files under ``root`` (default ``INSILICO_DATA``): ``{file: "ok" | "missing" |
    "sha256 mismatch"}``. Example: ``verify("mnist_test")``."""
    import hashlib
    from pathlib import Path

    from ._paths import data_dir

    if not isinstance(name, str) or name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    base = Path(root or data_dir()).expanduser()
    if not base.is_dir():                    # not "every file missing": the root itself is not there
        raise FileNotFoundError(f"root {str(base)!r} is not a directory (pass the directory holding {name}/)")
    folder = base / name
    status = {}
    for rel, expected in DATASETS[name]["files"].items():
        path = folder / rel
        if not path.exists():
            status[rel] = "missing"
            continue
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        status[rel] = "ok" if h.hexdigest() == expected else "sha256 mismatch"
    return status

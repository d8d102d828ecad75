//! Places: communes with INSEE code, postcode and label (weighted roughly by population,
//! with Corsica's 2A/2B and the 97x overseas départements), foreign countries, phone prefixes.

/// (weight, INSEE code, postcode, label). Paris, Marseille and Lyon are split into
/// arrondissements by `commune`.
static COMMUNES: &[(u32, &str, &str, &str)] = &[
    (2100, "75056", "75000", "Paris"),
    (870, "13055", "13000", "Marseille"),
    (520, "69123", "69000", "Lyon"),
    (500, "31555", "31000", "Toulouse"),
    (340, "06088", "06000", "Nice"),
    (320, "44109", "44000", "Nantes"),
    (300, "34172", "34000", "Montpellier"),
    (290, "67482", "67000", "Strasbourg"),
    (260, "33063", "33000", "Bordeaux"),
    (235, "59350", "59000", "Lille"),
    (220, "35238", "35000", "Rennes"),
    (180, "51454", "51100", "Reims"),
    (180, "83137", "83000", "Toulon"),
    (175, "42218", "42000", "Saint-Étienne"),
    (165, "76351", "76600", "Le Havre"),
    (158, "38185", "38000", "Grenoble"),
    (160, "21231", "21000", "Dijon"),
    (157, "49007", "49000", "Angers"),
    (150, "30189", "30000", "Nîmes"),
    (150, "69266", "69100", "Villeurbanne"),
    (147, "63113", "63000", "Clermont-Ferrand"),
    (145, "72181", "72000", "Le Mans"),
    (145, "13001", "13100", "Aix-en-Provence"),
    (140, "29019", "29200", "Brest"),
    (136, "37261", "37000", "Tours"),
    (134, "80021", "80000", "Amiens"),
    (130, "87085", "87000", "Limoges"),
    (130, "74010", "74000", "Annecy"),
    (120, "66136", "66000", "Perpignan"),
    (120, "92012", "92100", "Boulogne-Billancourt"),
    (120, "57463", "57000", "Metz"),
    (118, "25056", "25000", "Besançon"),
    (116, "45234", "45000", "Orléans"),
    (113, "93066", "93200", "Saint-Denis"),
    (110, "95018", "95100", "Argenteuil"),
    (112, "76540", "76000", "Rouen"),
    (110, "93048", "93100", "Montreuil"),
    (108, "68224", "68100", "Mulhouse"),
    (106, "14118", "14000", "Caen"),
    (104, "54395", "54000", "Nancy"),
    (98, "59512", "59100", "Roubaix"),
    (98, "59599", "59200", "Tourcoing"),
    (96, "92050", "92000", "Nanterre"),
    (95, "94081", "94400", "Vitry-sur-Seine"),
    (92, "94028", "94000", "Créteil"),
    (91, "84007", "84000", "Avignon"),
    (89, "86194", "86000", "Poitiers"),
    (88, "93001", "93300", "Aubervilliers"),
    (86, "59183", "59140", "Dunkerque"),
    (86, "93005", "93600", "Aulnay-sous-Bois"),
    (86, "92025", "92700", "Colombes"),
    (86, "92004", "92600", "Asnières-sur-Seine"),
    (85, "78646", "78000", "Versailles"),
    (82, "92026", "92400", "Courbevoie"),
    (78, "50129", "50100", "Cherbourg-en-Cotentin"),
    (78, "92063", "92500", "Rueil-Malmaison"),
    (78, "34032", "34500", "Béziers"),
    (77, "17300", "17000", "La Rochelle"),
    (77, "94017", "94500", "Champigny-sur-Marne"),
    (76, "64445", "64000", "Pau"),
    (75, "94068", "94100", "Saint-Maur-des-Fossés"),
    (73, "06004", "06600", "Antibes"),
    (73, "06029", "06400", "Cannes"),
    (72, "62193", "62100", "Calais"),
    (72, "93029", "93700", "Drancy"),
    (72, "33281", "33700", "Mérignac"),
    (71, "44184", "44600", "Saint-Nazaire"),
    (68, "68066", "68000", "Colmar"),
    (68, "92040", "92130", "Issy-les-Moulineaux"),
    (68, "93051", "93160", "Noisy-le-Grand"),
    (67, "91228", "91000", "Évry-Courcouronnes"),
    (66, "69259", "69200", "Vénissieux"),
    (66, "95127", "95000", "Cergy"),
    (65, "92044", "92300", "Levallois-Perret"),
    (64, "26362", "26000", "Valence"),
    (64, "18033", "18000", "Bourges"),
    (64, "33318", "33600", "Pessac"),
    (63, "94041", "94200", "Ivry-sur-Seine"),
    (63, "29232", "29000", "Quimper"),
    (62, "83126", "83500", "La Seyne-sur-Mer"),
    (62, "92002", "92160", "Antony"),
    (62, "59009", "59650", "Villeneuve-d'Ascq"),
    (62, "92024", "92110", "Clichy"),
    (61, "10387", "10000", "Troyes"),
    (61, "82121", "82000", "Montauban"),
    (60, "92051", "92200", "Neuilly-sur-Seine"),
    (60, "93055", "93500", "Pantin"),
    (59, "79191", "79000", "Niort"),
    (59, "73065", "73000", "Chambéry"),
    (58, "95585", "95200", "Sarcelles"),
    (57, "93007", "93150", "Le Blanc-Mesnil"),
    (57, "56121", "56100", "Lorient"),
    (56, "60057", "60000", "Beauvais"),
    (56, "94046", "94700", "Maisons-Alfort"),
    (55, "77284", "77100", "Meaux"),
    (55, "11262", "11100", "Narbonne"),
    (55, "77108", "77500", "Chelles"),
    (55, "83069", "83400", "Hyères"),
    (55, "94076", "94800", "Villejuif"),
    (54, "83061", "83600", "Fréjus"),
    (54, "56260", "56000", "Vannes"),
    (54, "93031", "93800", "Épinay-sur-Seine"),
    (54, "49099", "49300", "Cholet"),
    (55, "85191", "85000", "La Roche-sur-Yon"),
    (53, "02691", "02100", "Saint-Quentin"),
    (52, "64102", "64100", "Bayonne"),
    (51, "13004", "13200", "Arles"),
    (50, "06069", "06130", "Grasse"),
    (49, "81004", "81000", "Albi"),
    (49, "53130", "53000", "Laval"),
    (47, "27229", "27000", "Évreux"),
    (46, "08105", "08000", "Charleville-Mézières"),
    (46, "41018", "41000", "Blois"),
    (46, "11069", "11000", "Carcassonne"),
    (46, "90010", "90000", "Belfort"),
    (46, "19031", "19100", "Brive-la-Gaillarde"),
    (45, "13103", "13300", "Salon-de-Provence"),
    (44, "51108", "51000", "Châlons-en-Champagne"),
    (44, "34301", "34200", "Sète"),
    (44, "22278", "22000", "Saint-Brieuc"),
    (43, "36044", "36000", "Châteauroux"),
    (43, "59606", "59300", "Valenciennes"),
    (42, "01053", "01000", "Bourg-en-Bresse"),
    (42, "65440", "65000", "Tarbes"),
    (42, "30007", "30100", "Alès"),
    (42, "16015", "16000", "Angoulême"),
    (42, "62041", "62000", "Arras"),
    (41, "05061", "05000", "Gap"),
    (41, "57672", "57100", "Thionville"),
    (40, "83050", "83300", "Draguignan"),
    (39, "28085", "28000", "Chartres"),
    (39, "59178", "59500", "Douai"),
    (35, "89024", "89000", "Auxerre"),
    (34, "71270", "71000", "Mâcon"),
    (34, "03185", "03100", "Montluçon"),
    (33, "58194", "58000", "Nevers"),
    (32, "88160", "88000", "Épinal"),
    (32, "47001", "47000", "Agen"),
    (31, "94038", "94240", "L'Haÿ-les-Roses"),
    (31, "62498", "62300", "Lens"),
    (30, "24322", "24000", "Périgueux"),
    (30, "40192", "40000", "Mont-de-Marsan"),
    (30, "06083", "06500", "Menton"),
    (28, "76575", "76800", "Saint-Étienne-du-Rouvray"),
    (26, "61001", "61000", "Alençon"),
    (25, "15014", "15000", "Aurillac"),
    (25, "25388", "25200", "Montbéliard"),
    (24, "12202", "12000", "Rodez"),
    (24, "02408", "02000", "Laon"),
    (22, "32013", "32000", "Auch"),
    (19, "46042", "46000", "Cahors"),
    (19, "43157", "43000", "Le Puy-en-Velay"),
    (19, "50502", "50000", "Saint-Lô"),
    (16, "04070", "04000", "Digne-les-Bains"),
    (14, "64483", "64500", "Saint-Jean-de-Luz"),
    (13, "23096", "23000", "Guéret"),
    (10, "56165", "56800", "Ploërmel"),
    (8, "88196", "88400", "Gérardmer"),
    (8, "34199", "34120", "Pézenas"),
    (5, "85113", "85350", "L'Île-d'Yeu"),
    // Corsica: INSEE codes 2A/2B, postcodes 20xxx.
    (72, "2A004", "20000", "Ajaccio"),
    (48, "2B033", "20200", "Bastia"),
    (12, "2A247", "20137", "Porto-Vecchio"),
    (8, "2B096", "20250", "Corte"),
    (6, "2B050", "20260", "Calvi"),
    // Overseas: three-digit départements 971-976.
    (53, "97101", "97139", "Les Abymes"),
    (15, "97120", "97110", "Pointe-à-Pitre"),
    (76, "97209", "97200", "Fort-de-France"),
    (63, "97302", "97300", "Cayenne"),
    (153, "97411", "97400", "Saint-Denis"),
    (85, "97416", "97410", "Saint-Pierre"),
    (71, "97611", "97600", "Mamoudzou"),
];

/// A French place as written in the extract.
pub(crate) struct Place {
    pub insee: String,
    pub postcode: String,
    pub label: String,
}

/// Draws a commune weighted by population.
pub(crate) fn commune(rng: &mut super::rng::Rng) -> Place {
    let (insee, postcode, label) = pick_commune(rng);
    let arrondissements = match insee {
        "75056" => Some(("751", "750", 20)),
        "13055" => Some(("132", "130", 16)),
        "69123" => Some(("6938", "6900", 9)),
        _ => None,
    };
    match arrondissements {
        Some((insee_prefix, post_prefix, count)) => {
            let n = rng.range(1, count);
            let width = 5 - insee_prefix.len();
            let suffix = if n == 1 { "er" } else { "e" };
            Place {
                insee: format!("{insee_prefix}{n:0width$}"),
                postcode: format!("{post_prefix}{n:0w$}", w = 5 - post_prefix.len()),
                label: format!("{label} {n}{suffix} Arrondissement"),
            }
        }
        None => Place {
            insee: insee.to_owned(),
            postcode: postcode.to_owned(),
            label: label.to_owned(),
        },
    }
}

fn pick_commune(rng: &mut super::rng::Rng) -> (&'static str, &'static str, &'static str) {
    let total: u64 = COMMUNES.iter().map(|c| u64::from(c.0)).sum();
    let mut x = rng.below(total);
    for &(w, insee, postcode, label) in COMMUNES {
        if x < u64::from(w) {
            return (insee, postcode, label);
        }
        x -= u64::from(w);
    }
    ("75056", "75000", "Paris")
}

/// Département of an INSEE commune code: 2 characters, 3 for overseas.
pub(crate) fn departement(insee: &str) -> &str {
    let n = if insee.starts_with("97") { 3 } else { 2 };
    insee.get(..n).unwrap_or("")
}

/// Town part of La Poste's last address line: capitals, no accents, SAINT shortened to ST.
pub(crate) fn poste_label(label: &str) -> String {
    let mut s = String::with_capacity(label.len());
    for c in label.chars() {
        let up = match c {
            'à' | 'â' | 'ä' | 'À' | 'Â' => 'A',
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' => 'E',
            'î' | 'ï' | 'Î' => 'I',
            'ô' | 'ö' | 'Ô' => 'O',
            'ù' | 'û' | 'ü' => 'U',
            'ÿ' => 'Y',
            'ç' => 'C',
            '-' | '\'' => ' ',
            c => c.to_ascii_uppercase(),
        };
        s.push(up);
    }
    if let Some(idx) = s.find(" ARRONDISSEMENT") {
        // "PARIS 10E ARRONDISSEMENT" is written "PARIS" by La Poste.
        s.truncate(idx);
        if let Some(sp) = s.rfind(' ') {
            s.truncate(sp);
        }
    }
    s.replace("SAINTE ", "STE ").replace("SAINT ", "ST ")
}

/// Landline prefix for a département (overseas have their own four-digit prefixes).
pub(crate) fn phone_prefix(dep: &str) -> &'static str {
    match dep {
        "971" => "0590",
        "972" => "0596",
        "973" => "0594",
        "974" => "0262",
        "976" => "0269",
        "75" | "77" | "78" | "91" | "92" | "93" | "94" | "95" => "01",
        "14" | "18" | "22" | "27" | "28" | "29" | "35" | "36" | "37" | "41" | "44" | "45" | "49" | "50" | "53"
        | "56" | "61" | "72" | "76" | "85" => "02",
        "02" | "08" | "10" | "21" | "25" | "39" | "51" | "52" | "54" | "55" | "57" | "58" | "59" | "60" | "62"
        | "67" | "68" | "70" | "71" | "80" | "88" | "89" | "90" => "03",
        "09" | "12" | "16" | "17" | "19" | "23" | "24" | "31" | "32" | "33" | "40" | "46" | "47" | "64" | "65"
        | "79" | "81" | "82" | "86" | "87" => "05",
        _ => "04",
    }
}

/// (code pays, libellé pays, postcode, town) of the rare structures abroad; the postcode
/// is not always numeric.
pub(crate) static ABROAD: [(&str, &str, &str, &str); 5] = [
    ("99138", "Monaco", "98000", "MONACO"),
    ("99131", "Belgique", "1000", "BRUXELLES"),
    ("99140", "Suisse", "1205", "GENEVE"),
    ("99132", "Royaume-Uni", "SW1A 1AA", "LONDON"),
    ("99137", "Luxembourg", "L-1009", "LUXEMBOURG"),
];

pub(crate) const FRANCE: (&str, &str) = ("99000", "France");

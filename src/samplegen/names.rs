//! Words: family and given names (capitals, with French accents, hyphens and apostrophes as
//! in the real extract), street names and the vocabulary of structure names.

use super::rng::Rng;

#[rustfmt::skip]
pub(crate) static FAMILY: &[&str] = &[
    "MARTIN", "BERNARD", "THOMAS", "PETIT", "ROBERT", "RICHARD", "DURAND", "DUBOIS", "MOREAU",
    "LAURENT", "SIMON", "MICHEL", "LEFÈVRE", "LEROY", "ROUX", "DAVID", "BERTRAND", "MOREL",
    "FOURNIER", "GIRARD", "BONNET", "DUPONT", "LAMBERT", "FONTAINE", "ROUSSEAU", "VINCENT",
    "MULLER", "LEFÈBVRE", "FAURE", "ANDRÉ", "MERCIER", "BLANC", "GUÉRIN", "BOYER", "GARNIER",
    "CHEVALIER", "FRANÇOIS", "LEGRAND", "GAUTHIER", "GARCIA", "PERRIN", "ROBIN", "CLÉMENT", "MORIN",
    "NICOLAS", "HENRY", "ROUSSEL", "MATHIEU", "GAUTIER", "MASSON", "MARCHAND", "DUVAL", "DENIS",
    "DUMONT", "MARIE", "LEMAIRE", "NOËL", "MEYER", "DUFOUR", "MEUNIER", "BRUN", "BLANCHARD",
    "GIRAUD", "JOLY", "RIVIÈRE", "LUCAS", "BRUNET", "GAILLARD", "BARBIER", "ARNAUD", "MARTINEZ",
    "GÉRARD", "ROCHE", "RENARD", "SCHMITT", "ROY", "LEROUX", "COLIN", "VIDAL", "CARON", "PICARD",
    "ROGER", "FABRE", "AUBERT", "LEMOINE", "RENAUD", "DUMAS", "LACROIX", "OLIVIER", "PHILIPPE",
    "BOURGEOIS", "PIERRE", "BENOÎT", "REY", "LECLERC", "PAYET", "ROLLAND", "LECLERCQ", "GUILLAUME",
    "LECOMTE", "LOPEZ", "JEAN", "DUPUY", "GUILLOT", "HUBERT", "BERGER", "CARPENTIER", "SANCHEZ",
    "DUPUIS", "MOULIN", "LOUIS", "DESCHAMPS", "HUET", "VASSEUR", "PEREZ", "BOUCHER", "FLEURY",
    "ROYER", "KLEIN", "JACQUET", "ADAM", "PARIS", "POIRIER", "MARTY", "AUBRY", "GUYOT", "CARRÉ",
    "CHARLES", "RENAULT", "CHARPENTIER", "MÉNARD", "MAILLARD", "BARON", "BERTIN", "BAILLY", "HERVÉ",
    "SCHNEIDER", "FERNANDEZ", "LE GALL", "COLLET", "LÉGER", "BOUVIER", "JULIEN", "PRÉVOST",
    "MILLET", "PERROT", "DANIEL", "LE ROUX", "COUSIN", "GERMAIN", "BRETON", "BESSON", "LANGLOIS",
    "RÉMY", "LE GOFF", "PELLETIER", "LÉVÊQUE", "PERRIER", "LEBLANC", "BARRÉ", "LEBRUN", "MARCHAL",
    "WEBER", "MALLET", "HAMON", "BOULANGER", "JACOB", "MONNIER", "MICHAUD", "RODRIGUEZ", "GUICHARD",
    "GILLET", "ÉTIENNE", "GRONDIN", "POULAIN", "TESSIER", "CHEVALLIER", "COLLIN", "CHAUVIN",
    "DA SILVA", "BOUCHET", "GAY", "LEMAÎTRE", "BÉNARD", "MARÉCHAL", "HUMBERT", "REYNAUD", "ANTOINE",
    "HOARAU", "PERRET", "BARTHÉLEMY", "CORDIER", "PICHON", "LEJEUNE", "GILBERT", "LAMY", "DELAUNAY",
    "PASQUIER", "CARLIER", "LAPORTE", "D'ALMEIDA", "N'DIAYE", "DIALLO", "BENOIT-GONIN", "HADDAD",
    "BENALI", "NGUYEN", "TRAN", "COHEN", "LÉVY", "BOUAZIZ", "O'NEILL", "DE LA FONTAINE",
    "SAINT-JEAN", "CÔTÉ", "HÉBERT", "PÉREZ-DUVAL", "DELCOURT", "QUÉRÉ",
];

#[rustfmt::skip]
pub(crate) static GIVEN_F: &[&str] = &[
    "MARIE", "NATHALIE", "ISABELLE", "SYLVIE", "CATHERINE", "FRANÇOISE", "VALÉRIE", "CHRISTINE",
    "SANDRINE", "STÉPHANIE", "CÉLINE", "SOPHIE", "AURÉLIE", "JULIE", "CAROLINE", "ÉMILIE", "LAURE",
    "CAMILLE", "ANNE", "HÉLÈNE", "VIRGINIE", "CLAIRE", "ÉLODIE", "AMÉLIE", "MÉLANIE", "CHLOÉ",
    "LÉA", "MANON", "PAULINE", "MARION", "LAURA", "SARAH", "CLÉMENCE", "JEANNE", "ANAÏS", "NOÉMIE",
    "GAËLLE", "MAËLLE", "OCÉANE", "AGNÈS", "BÉATRICE", "DOMINIQUE", "MARIE-HÉLÈNE", "ANNE-SOPHIE",
    "MARIE-CLAIRE", "JOSÉPHINE", "LOUISE", "INÈS", "ZOÉ", "FATIMA", "KARINE", "MYRIAM", "ESTELLE",
    "CHANTAL", "BRIGITTE", "MARTINE", "ÉVELYNE",
];

#[rustfmt::skip]
pub(crate) static GIVEN_M: &[&str] = &[
    "JEAN", "PHILIPPE", "MICHEL", "ALAIN", "PATRICK", "NICOLAS", "CHRISTOPHE", "PIERRE",
    "CHRISTIAN", "ÉRIC", "FRÉDÉRIC", "LAURENT", "STÉPHANE", "DAVID", "JULIEN", "SÉBASTIEN",
    "THOMAS", "FRANÇOIS", "OLIVIER", "JÉRÔME", "BRUNO", "THIERRY", "VINCENT", "ANTOINE", "MAXIME",
    "ALEXANDRE", "GUILLAUME", "ROMAIN", "HUGO", "LUCAS", "CLÉMENT", "THÉO", "LOÏC", "JOËL",
    "GAËTAN", "RAPHAËL", "BENOÎT", "ANDRÉ", "RENÉ", "GÉRARD", "HERVÉ", "MATHIEU", "JEAN-FRANÇOIS",
    "JEAN-PIERRE", "JEAN-MARC", "PIERRE-YVES", "FRANÇOIS-XAVIER", "MEHDI", "KARIM", "YANNICK",
    "CÉDRIC", "LUDOVIC", "ARNAUD", "FABRICE", "DIDIER", "BERNARD",
];

#[rustfmt::skip]
pub(crate) static STREETS: &[&str] = &[
    "DE LA RÉPUBLIQUE", "DU GÉNÉRAL DE GAULLE", "JEAN JAURÈS", "VICTOR HUGO", "PASTEUR",
    "DES ÉCOLES", "DE L'ÉGLISE", "DU MARÉCHAL FOCH", "DE LA GARE", "GAMBETTA", "DE LA LIBÉRATION",
    "NATIONALE", "DU 8 MAI 1945", "DE L'HÔPITAL", "SAINT-MARTIN", "DES LILAS", "DU MOULIN",
    "DE VERDUN", "CARNOT", "DE LA PAIX", "DU PORT", "DES TILLEULS", "ANATOLE FRANCE", "ÉMILE ZOLA",
    "DE LA FONTAINE", "GEORGES CLEMENCEAU", "DU STADE", "DE LA MAIRIE", "DES ACACIAS", "DU CHÂTEAU",
    "LOUIS PASTEUR", "DU CENTRE", "DE PARIS", "DE LA LIBERTÉ", "DES CHAMPS", "DU PRÉ",
    "DE BELLEVUE", "PIERRE ET MARIE CURIE", "DU 11 NOVEMBRE 1918", "ALBERT CAMUS", "JULES FERRY",
    "DES MARRONNIERS", "DE LA POSTE", "DU COMMANDANT CHARCOT", "DU DOCTEUR SCHWEITZER",
    "ARISTIDE BRIAND", "DES PÊCHEURS", "DE L'ABBÉ PIERRE", "SAINTE-ANNE", "DES FRÈRES LUMIÈRE",
    "ROBERT SCHUMAN", "DE LORRAINE",
];

/// (code, label) of the street type.
pub(crate) static STREET_TYPES: &[(u32, (&str, &str))] = &[
    (45, ("R", "Rue")),
    (18, ("AV", "Avenue")),
    (10, ("BD", "Boulevard")),
    (7, ("PL", "Place")),
    (5, ("CHE", "Chemin")),
    (4, ("RTE", "Route")),
    (3, ("ALL", "Allée")),
    (2, ("IMP", "Impasse")),
    (2, ("QUAI", "Quai")),
    (1, ("CRS", "Cours")),
    (1, ("SQ", "Square")),
    (1, ("RES", "Résidence")),
    (1, ("PAS", "Passage")),
];

#[rustfmt::skip]
pub(crate) static HOSPITAL_SERVICES: &[&str] = &[
    "SERVICE DE CARDIOLOGIE", "POLE MERE-ENFANT", "SERVICE DES URGENCES", "SERVICE DE GERIATRIE",
    "POLE MEDECINE", "BLOC OPERATOIRE", "SERVICE DE PNEUMOLOGIE", "PHARMACIE A USAGE INTERIEUR",
    "SERVICE DE PSYCHIATRIE ADULTE", "SERVICE DE RADIOLOGIE", "LABORATOIRE", "SERVICE D'ONCOLOGIE",
];

#[rustfmt::skip]
pub(crate) static BUILDINGS: &[&str] = &[
    "BATIMENT A", "BATIMENT B", "HALL 2", "RESIDENCE LES PINS", "ZONE ARTISANALE",
    "CENTRE COMMERCIAL LES ARCADES", "ESPACE SANTE", "IMMEUBLE LE CONCORDE", "1ER ETAGE",
    "PARC D'ACTIVITES DU GRAND PRE", "LE PATIO", "POLE SANTE",
];

/// Names with a double quote, a quirk of the real files that breaks RFC 4180 parsers.
#[rustfmt::skip]
pub(crate) static QUOTED: &[&str] = &[
    "BATIMENT \"B\"", "RESIDENCE \"LES GLYCINES\"", "IMMEUBLE \"LE FORUM\"", "ESCALIER \"C\"",
];

#[rustfmt::skip]
pub(crate) static GROUP_WORDS: &[&str] = &[
    "DU PARC", "DES ARCADES", "DE LA GARE", "SAINT-EXUPÉRY", "PASTEUR", "DU CENTRE", "DES LILAS",
    "DU VAL", "LES TILLEULS", "DE L'ÉTANG", "BELLEVUE", "DU PORT", "DES QUATRE CHEMINS",
    "DU MARCHÉ", "LE MÉRIDIEN", "DES COTEAUX", "SAINTE-CLAIRE", "DU LAC", "HIPPOCRATE",
    "RIVE GAUCHE",
];

pub(crate) fn family(rng: &mut Rng) -> String {
    // A few composite names, as married names appear in the register.
    if rng.chance(40_000) {
        format!("{}-{}", rng.pick(FAMILY), rng.pick(FAMILY))
    } else {
        (*rng.pick(FAMILY)).to_owned()
    }
}

pub(crate) fn given(rng: &mut Rng, female: bool) -> &'static str {
    let name: &&'static str = rng.pick(if female { GIVEN_F } else { GIVEN_M });
    name
}

/// Lower-case ASCII form of a name for e-mail addresses.
pub(crate) fn email_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = match c {
            'É' | 'È' | 'Ê' | 'Ë' | 'é' | 'è' | 'ê' | 'ë' => 'e',
            'À' | 'Â' | 'à' | 'â' => 'a',
            'Î' | 'Ï' | 'î' | 'ï' => 'i',
            'Ô' | 'ô' => 'o',
            'Û' | 'Ù' | 'û' | 'ù' => 'u',
            'Ç' | 'ç' => 'c',
            'Ÿ' | 'ÿ' => 'y',
            ' ' | '\'' | '"' => '-',
            c if c.is_ascii_alphanumeric() || c == '-' => c.to_ascii_lowercase(),
            _ => continue,
        };
        out.push(c);
    }
    out
}
